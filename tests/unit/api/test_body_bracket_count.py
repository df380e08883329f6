"""A body's brackets are counted only to spare the walk: whatever its size and however many
brackets its strings hold, the refusal is the walk's."""

import pytest

from foretell.api.body import loads
from foretell.errors import NestingTooDeep

PAD = b'"' + b"x" * 70_000 + b'"'  # past the size below which brackets are counted


def test_a_large_shallow_body_is_read() -> None:
    assert loads(b'{"pad": ' + PAD + b', "n": [[1]]}', max_depth=3)["n"] == [[1]]


def test_a_large_deep_body_is_refused() -> None:
    with pytest.raises(NestingTooDeep):
        loads(b'{"pad": ' + PAD + b', "n": [[[1]]]}', max_depth=3)


def test_a_small_body_with_no_more_brackets_than_the_limit_is_read() -> None:
    assert loads(b'{"n": [[1]]}', max_depth=3) == {"n": [[1]]}
