"""The protocol's operations over the PredictionService, whichever transport carries them (the
HTTP routes here, the gRPC service in api.oip_grpc): find the version a request names,
describe it, and run an inference from tensors already decoded into flat elements."""

from __future__ import annotations

import re
from typing import Any

from foretell.api.dialects import sync
from foretell.api.dialects.oip_v2 import specs, tensors
from foretell.api.dialects.oip_v2.schemas import RequestInput
from foretell.config import Settings
from foretell.domain import DeploymentStatus, ModelRef, Prediction
from foretell.domain.access import Principal
from foretell.errors import InvalidRequest, ModelNotReady, echo
from foretell.manifest import Signature
from foretell.service import PredictionService, VersionView

_VERSION = re.compile(r"[1-9][0-9]{0,8}")  # a version number, as in a native model reference
# The protocol's platform names, Triton's where it has one.
_PLATFORMS = {"onnx": "onnxruntime_onnx"}


def version(
    service: PredictionService, owner: str, name: str, version: str | None, caller: Principal
) -> VersionView:
    """The version `version` (a number as text; None: the latest ready) of `owner/name`."""
    number = None
    if version is not None:
        if not _VERSION.fullmatch(version):
            raise InvalidRequest(
                f"model version '{echo(version)}' is not a version number; versions are 1, 2, …"
            )
        number = int(version)
    return service.catalog.version(ModelRef(owner, name, number), caller)


def signature(version: VersionView) -> Signature:
    """What the model takes and gives: known once it has loaded."""
    if version.signature is not None:
        return version.signature
    if version.status is DeploymentStatus.FAILED:
        raise version.load_error()
    raise ModelNotReady(str(version.ref), version.status.value)


def metadata(service: PredictionService, version: VersionView, caller: Principal) -> dict[str, Any]:
    """The model metadata response: name, versions, platform, input and output tensors."""
    found = signature(version)
    model = service.catalog.model(version.owner, version.name, caller)
    runtime = version.runtime or "unknown"
    outputs = specs.outputs(found.output_schema) or {}
    return {
        "name": version.slug,
        "versions": [str(v.number) for v in model.versions],
        "platform": _PLATFORMS.get(runtime, f"foretell_{runtime}"),
        "inputs": [s.metadata() for s in specs.inputs(found.input_schema).values()],
        "outputs": [s.metadata() for s in outputs.values()],
    }


async def infer(
    service: PredictionService,
    settings: Settings,
    caller: Principal,
    version: VersionView,
    inputs: list[RequestInput],
    decoded: dict[str, list[Any]],
    wanted: list[str] | None,
) -> tuple[Prediction, list[dict[str, Any]]]:
    """Run `inputs` (their elements from `decoded` by name where there, else their `data`) on
    `version` through the one prediction path, recorded, waiting up to the server's max wait:
    the prediction and its output tensors, those `wanted` (None: every one), elements flat."""
    found = sync.answering(version)
    model = str(version.ref)
    tensors.check_requested(model, wanted or (), found.output_schema)
    model_input = tensors.model_input(model, inputs, decoded, found.input_schema)
    prediction, output = await sync.predict(
        service,
        version,
        model_input,
        caller,
        wait_s=settings.max_wait_s,
        validate_input=True,
    )
    return prediction, tensors.outputs(model, output, wanted, found.output_schema)
