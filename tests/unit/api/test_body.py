"""A JSON body nested past the limit is refused, naming the limit and where, whatever its depth."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from foretell.api.app import create_app
from foretell.api.body import loads, parse_body
from foretell.config import Settings
from foretell.errors import InvalidRequest, NestingTooDeep


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def body(n_depth: int) -> bytes:
    return b'{"model": "demo/text-stats", "input": {"text": "a", "n": ' + nested(n_depth) + b"}}"


def test_the_attack_body_is_refused_naming_the_limit_and_where() -> None:
    with pytest.raises(NestingTooDeep) as refused:
        loads(body(253), max_depth=64)

    assert refused.value.message == (
        "request body nests deeper than 64 levels of arrays and objects "
        "(at input.n.0.0.0.0.0.0…); send it less deeply nested"
    )
    assert isinstance(refused.value, InvalidRequest)  # a 400


def test_a_body_exactly_at_the_limit_is_read() -> None:
    assert loads(body(62), max_depth=64)["input"]["text"] == "a"  # 1 + 1 + 62 levels
    with pytest.raises(NestingTooDeep):
        loads(body(63), max_depth=64)


def test_deeper_than_orjson_reads_is_the_same_refusal_at_a_character() -> None:
    with pytest.raises(NestingTooDeep) as refused:
        loads(nested(5000), max_depth=64)

    assert "deeper than 64 levels" in refused.value.message
    assert "(at character 1025)" in refused.value.message


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = b'{"text": "' + b"[" * 500 + b'"}'
    assert loads(text, max_depth=2) == {"text": "[" * 500}


def test_parse_body_refuses_before_validating() -> None:
    class Anything(BaseModel):
        pass

    with pytest.raises(NestingTooDeep):
        parse_body(body(100), Anything, max_depth=64)


def test_no_route_lets_fastapi_parse_its_body(tmp_path: Path) -> None:
    # FastAPI's own parsing (a pydantic body parameter) would skip the depth limit, and its
    # stdlib parser answers a deep body with a bare 400: every route reads through loads.
    app = create_app(Settings(repository=tmp_path, data_dir=tmp_path / "data"))

    parsed_by_fastapi = [
        f"{sorted(r.methods)} {r.path}"
        for r in app.routes
        if isinstance(r, APIRoute) and r.body_field is not None
    ]

    assert parsed_by_fastapi == []
