"""`-i key=value` pairs → a JSON input object (values parsed as JSON, else kept as text;
`key=@path` names a local file, uploaded before the prediction: see cli.uploads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def parse_inputs(pairs: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"'{pair}' is not key=value", param_hint="--input")
        if raw.startswith("@"):  # as curl's -F; a text starting with @ is given as '"@…"'
            path = Path(raw[1:]).expanduser()
            if not path.is_file():
                raise typer.BadParameter(
                    f"'{pair}': {path} is not a file (a text starting with @ is written "
                    f"{key}='\"{raw}\"')",
                    param_hint="--input",
                )
            result[key] = path
            continue
        try:
            result[key] = json.loads(raw)
        except json.JSONDecodeError:
            result[key] = raw
    return result
