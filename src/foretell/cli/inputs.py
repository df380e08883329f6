"""`-i key=value` pairs → a JSON input object (values parsed as JSON, else kept as text)."""

from __future__ import annotations

import json
from typing import Any

import typer


def parse_inputs(pairs: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"'{pair}' is not key=value", param_hint="--input")
        try:
            result[key] = json.loads(raw)
        except json.JSONDecodeError:
            result[key] = raw
    return result
