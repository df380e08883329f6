"""Dialects that send one JSON value for the whole model, where foretell's models take named
inputs: how that value becomes the named inputs."""

from __future__ import annotations

from typing import Any

from foretell.errors import InvalidRequest


def one_input(value: Any, schema: dict[str, Any], field: str) -> dict[str, Any]:
    """An object is the named inputs. Otherwise the model must have one input, which takes the
    value whole (an array input) or its one item (a scalar input given a list of one)."""
    if isinstance(value, dict):
        return value
    properties: dict[str, Any] = schema.get("properties", {})
    required: list[str] = schema.get("required", [])
    if len(properties) != 1 and len(required) != 1:
        names = ", ".join(properties)
        raise InvalidRequest(
            f"{field}: this model takes several named inputs ({names}); send an object of them"
        )
    name = required[0] if required else next(iter(properties))
    if properties[name].get("type") == "array":
        return {name: value}
    if isinstance(value, list):
        if len(value) != 1:
            raise InvalidRequest(
                f"{field}: {len(value)} items, but this model takes one '{name}' per request; "
                "send a list of one"
            )
        return {name: value[0]}
    return {name: value}
