"""The inference request body, as the protocol defines it (unknown fields are ignored)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictStr

Dimension = Annotated[int, Field(ge=0, strict=True)]


class RequestInput(BaseModel):
    name: StrictStr
    shape: list[Dimension]
    datatype: StrictStr
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = Field(
        None,
        description="row-major, flat or nested; absent when parameters.binary_data_size "
        "places the data after the JSON (binary tensor data extension)",
    )


class RequestOutput(BaseModel):
    name: StrictStr
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    id: StrictStr | None = Field(None, description="echoed in the response")
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = Field(
        None, description="the outputs to return, by name; all of them when absent"
    )


class RepositoryIndexRequest(BaseModel):
    """Triton's repository index request; tritonclient sends an empty body."""

    ready: bool = Field(False, description="only the versions ready to infer")


class RepositoryModelRequest(BaseModel):
    """Triton's load and unload request: both optional, as its body is."""

    parameters: dict[str, Any] | None = Field(
        None,
        description="load: none taken (Triton's config and file: overrides are refused: a "
        "model's configuration is its foretell.yaml); unload: unload_dependents (a boolean), "
        "others ignored",
    )
