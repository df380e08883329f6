"""Parse the `Prefer` request header (RFC 7240) into the preferences foretell honours."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from foretell.api.headers import check_length
from foretell.errors import InvalidPreference, echo

# RFC 9110 §5.6.2 tchar; no re.IGNORECASE or \w, which would let non-ASCII letters in.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.6.4: qdtext and quoted-pair, obs-text (0x80-0xFF) included.
_QUOTED = re.compile(r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"')
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_INTEGER = re.compile(r"-?[0-9]+")
_HANDLING = frozenset({"strict", "lenient"})


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a request asked for: seconds to wait, respond-async, and `handling` if given."""

    wait: int | None = None
    respond_async: bool = False
    handling: str | None = None


def parse_prefer(values: Sequence[str], *, max_wait: int) -> Preferences:
    """Combine every `Prefer` header value into `Preferences`, or raise `InvalidPreference`.

    Unknown preferences are ignored and, for one named twice, the first wins (RFC 7240 §2);
    `wait` must be a whole number of seconds from 1 to `max_wait`, and a bare `wait` means
    `max_wait`, as Replicate's sync mode reads `Prefer: wait`. Past 1 KiB: HeaderTooLong.
    """
    check_length("Prefer", values)
    found: dict[str, str | None] = {}
    for value in values:
        for name, word in _Scanner(value).preferences():
            found.setdefault(name.lower(), word)
    return Preferences(
        wait=_wait(found["wait"], max_wait) if "wait" in found else None,
        respond_async="respond-async" in found,
        handling=_handling(found.get("handling")),
    )


def _wait(word: str | None, max_wait: int) -> int:
    rule = f"wait must be an integer number of seconds from 1 to {max_wait}"
    if word is None:
        return max_wait
    if not _INTEGER.fullmatch(word):
        raise InvalidPreference(f"Prefer: wait={echo(word)} is not an integer; {rule}")
    # Compared by length first: int() of thousands of digits is slow and Python refuses it.
    digits = word.lstrip("-").lstrip("0")
    if len(digits) > len(str(max_wait)) or not 1 <= int(word) <= max_wait:
        raise InvalidPreference(f"Prefer: wait={echo(word)} is out of range; {rule}")
    return int(word)


def _handling(word: str | None) -> str | None:
    return word.lower() if word is not None and word.lower() in _HANDLING else None


class _Scanner:
    """Reads one header value: `1#preference` (RFC 7240 §2) with RFC 9110's list rules."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0

    def preferences(self) -> list[tuple[str, str | None]]:
        """Each preference as (name, value); parameters are read for syntax and dropped."""
        found: list[tuple[str, str | None]] = []
        while True:
            self._skip_ows()
            if self._at_end():
                return found
            if self._peek() == ",":  # empty list elements are allowed (RFC 9110 §5.6.1)
                self._pos += 1
                continue
            found.append(self._pair("a preference name"))
            self._skip_parameters()
            self._skip_ows()
            if not self._at_end() and self._peek() != ",":
                self._fail(f"expected ',' or ';' but found {self._peek()!r}")

    def _skip_parameters(self) -> None:
        while True:
            self._skip_ows()
            if self._peek() != ";":
                return
            self._pos += 1
            self._skip_ows()
            if not self._at_end() and self._peek() not in ",;":
                self._pair("a parameter name")

    def _pair(self, what: str) -> tuple[str, str | None]:
        """token [ BWS "=" BWS word ]; an empty quoted value counts as no value (RFC 7240 §2)."""
        name = self._match(_TOKEN, f"expected {what}")
        start = self._pos
        self._skip_ows()
        if self._peek() != "=":
            self._pos = start
            return name, None
        self._pos += 1
        self._skip_ows()
        if self._peek() == '"':
            quoted = self._match(_QUOTED, "unterminated or invalid quoted string")
            word = _QUOTED_PAIR.sub(r"\1", quoted[1:-1])
        else:
            word = self._match(_TOKEN, f"expected a value after '{name}='")
        return name, word or None

    def _match(self, pattern: re.Pattern[str], problem: str) -> str:
        found = pattern.match(self._text, self._pos)
        if found is None:
            self._fail(problem)
        self._pos = found.end()
        return found.group()

    def _skip_ows(self) -> None:
        while self._peek() in (" ", "\t"):
            self._pos += 1

    def _peek(self) -> str:
        return self._text[self._pos : self._pos + 1]

    def _at_end(self) -> bool:
        return self._pos >= len(self._text)

    def _fail(self, problem: str) -> NoReturn:
        raise InvalidPreference(
            f"Prefer header {echo(self._text)!r} is malformed at character {self._pos + 1}: "
            f"{problem}"
        )
