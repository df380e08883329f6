"""Prefer parser properties: wait survives any valid syntax around it; nothing else escapes."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foretell.api.prefer import Preferences, parse_prefer
from foretell.errors import InvalidPreference

TCHARS = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
QDTEXT = "".join(chr(c) for c in range(0x20, 0x7F)) + "\t\u00e9\u00ff"

ows = st.text(alphabet=" \t", max_size=2)
token = st.text(alphabet=TCHARS, min_size=1, max_size=8)


@st.composite
def quoted(draw: st.DrawFn, content: st.SearchStrategy[str]) -> str:
    """A quoted-string whose unquoted value is `content`, escaping at random where allowed."""
    out = []
    for char in draw(content):
        must = char in '"\\'
        out.append("\\" + char if must or draw(st.booleans()) else char)
    return '"' + "".join(out) + '"'


word = token | quoted(st.text(alphabet=QDTEXT, max_size=8))


@st.composite
def recased(draw: st.DrawFn, name: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c for c in name)


@st.composite
def pair(draw: st.DrawFn, name: st.SearchStrategy[str], value: st.SearchStrategy[str]) -> str:
    text = draw(name)
    if draw(st.booleans()):
        text += f"{draw(ows)}={draw(ows)}{draw(value)}"
    return text


@st.composite
def element(draw: st.DrawFn, head: st.SearchStrategy[str]) -> str:
    """A preference with parameters: `token [= word] *( OWS ";" [ OWS parameter ] )`."""
    text = draw(head)
    for _ in range(draw(st.integers(0, 3))):
        param = draw(st.none() | pair(token, word))
        text += f"{draw(ows)};" + (f"{draw(ows)}{param}" if param is not None else "")
    return text


other = element(pair(token.filter(lambda t: t.lower() != "wait"), word))


@st.composite
def headers(draw: st.DrawFn, elements: list[str]) -> list[str]:
    """Spread `elements` in order over one or more header values, with empty list elements."""
    values: list[str] = []
    current: list[str] = []
    for item in elements:
        current.append(item)
        if draw(st.booleans()):
            current.append("")  # an empty list element
        if draw(st.integers(0, 3)) == 0:
            values.append(",".join(f"{draw(ows)}{e}{draw(ows)}" for e in current))
            current = []
    values.append(",".join(f"{draw(ows)}{e}{draw(ows)}" for e in current))
    return values


@st.composite
def wait_value(draw: st.DrawFn, seconds: int) -> str:
    digits = "0" * draw(st.integers(0, 2)) + str(seconds)
    return draw(st.sampled_from([digits, f'"{digits}"']))


@given(st.data(), st.integers(1, 3600))
def test_a_valid_wait_round_trips(data: st.DataObject, max_wait: int) -> None:
    seconds = data.draw(st.integers(1, max_wait))
    value = data.draw(wait_value(seconds))
    name = data.draw(recased("wait"))
    wait = data.draw(element(st.just(f"{name}{data.draw(ows)}={data.draw(ows)}{value}")))
    before = data.draw(st.lists(other, max_size=3))
    after = data.draw(st.lists(other | element(pair(recased("wait"), word)), max_size=3))
    values = data.draw(headers([*before, wait, *after]))
    assert parse_prefer(values, max_wait=max_wait).wait == seconds


@given(st.data(), st.integers(1, 3600))
def test_an_out_of_range_wait_is_refused(data: st.DataObject, max_wait: int) -> None:
    seconds = data.draw(st.integers(max_value=0) | st.integers(min_value=max_wait + 1))
    with pytest.raises(InvalidPreference, match=f"out of range; .* from 1 to {max_wait}$"):
        parse_prefer([f"wait={seconds}"], max_wait=max_wait)


header_like = st.text(alphabet='wait=,;" \\\t-0123456789aAéx\x00', max_size=30)


@given(st.lists(st.text() | header_like, max_size=3), st.integers(1, 3600))
def test_arbitrary_text_only_ever_raises_invalid_preference(
    values: list[str], max_wait: int
) -> None:
    try:
        result = parse_prefer(values, max_wait=max_wait)
    except InvalidPreference:
        return
    assert isinstance(result, Preferences)
    assert result.wait is None or 1 <= result.wait <= max_wait
