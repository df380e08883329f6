"""File-typed input fields: which schema strings name a file, what a caller may send for one, and
where their values sit in a validated input (to resolve each to the file's bytes).

A file field (`format: uri | binary | path | file-path`, what a python model's `Path` emits) takes
an http(s) URL, a `data:` URI or a stored file's id or URL; never a path on the server. The
schema check here is syntax only; `foretell.files.inputs` fetches, decodes and looks them up."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pydantic_core import PydanticCustomError

FILE_FORMATS = frozenset({"uri", "binary", "path", "file-path"})
DIRECTORY_FORMAT = "directory-path"  # a folder cannot be sent: refused whatever the value

INVALID = "file_reference_invalid"
INVALID_MSG = (
    "a file input is an http(s) URL, a data: URI or an uploaded file's id or URL; "
    "a path on the server cannot be named"
)
CREDENTIALS_MSG = "a file input's URL cannot carry a user name or password"
DATA_MSG = "a data: URI has a comma before its data: data:[<type>][;base64],<data>"
DIRECTORY = "directory_not_accepted"
DIRECTORY_MSG = "a folder cannot be sent as an input: a path on the server cannot be named"

# A scheme (RFC 3986 3.1); a Windows drive ("C:\\…") reads as one and is refused as one.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# A bare stored file's id: no separators, dots or spaces, so no path of any kind passes; the
# file service says later whether it names a file of the caller's.
_BARE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

Loc = tuple[str | int, ...]
Visit = Callable[[Loc, str], Any]


def check_reference(value: str) -> str:
    """`value` if it may name a file (by its syntax), else PydanticCustomError saying why."""
    match = _SCHEME.match(value)
    if match is None:
        if _BARE_ID.match(value):
            return value
        raise PydanticCustomError(INVALID, INVALID_MSG)
    scheme = match.group(1).lower()
    if scheme == "data":
        if "," in value:
            return value
        raise PydanticCustomError(INVALID, DATA_MSG)
    if scheme in ("http", "https"):
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. an unbalanced IPv6 bracket
            raise PydanticCustomError(INVALID, INVALID_MSG) from None
        if parts.username is not None or parts.password is not None:
            raise PydanticCustomError(INVALID, CREDENTIALS_MSG)
        if parts.hostname:
            return value
    raise PydanticCustomError(INVALID, INVALID_MSG)


def refuse_directory(value: Any) -> Any:
    raise PydanticCustomError(DIRECTORY, DIRECTORY_MSG)


def invalid(loc: Loc, value: str, msg: str = INVALID_MSG, kind: str = INVALID) -> dict[str, Any]:
    """One field's error in the 422 shape, for a file reference refused past the schema."""
    return {"type": kind, "loc": ["input", *loc], "msg": msg, "input": value}


class FileFields:
    """Where a validated input's file references are: `visit(input, fn)` calls `fn(loc, value)`
    for each and returns the input with each replaced by what `fn` returned."""

    def __init__(self, spec: _Spec) -> None:
        self._spec = spec

    def visit(self, data: dict[str, Any], fn: Visit) -> dict[str, Any]:
        out: dict[str, Any] = self._spec.visit(data, (), fn)
        return out

    def find(self, data: dict[str, Any]) -> list[tuple[Loc, str]]:
        """Each file reference in `data` with its place (loc under `input`)."""
        found: list[tuple[Loc, str]] = []

        def keep(loc: Loc, value: str) -> str:
            found.append((loc, value))
            return value

        self.visit(data, keep)
        return found


def file_fields(schema: dict[str, Any]) -> FileFields | None:
    """The places files go in inputs of `schema`, or None when it takes no file."""
    spec = _Builder(schema).build(schema)
    return None if spec is None else FileFields(spec)


class _Spec:
    def visit(self, value: Any, loc: Loc, fn: Visit) -> Any:
        raise NotImplementedError


class _Leaf(_Spec):
    def visit(self, value: Any, loc: Loc, fn: Visit) -> Any:
        return fn(loc, value) if isinstance(value, str) else value


class _Items(_Spec):
    def __init__(self, item: _Spec | None, prefix: list[_Spec | None]) -> None:
        self.item, self.prefix = item, prefix

    def visit(self, value: Any, loc: Loc, fn: Visit) -> Any:
        if not isinstance(value, list | tuple):
            return value
        out = []
        for i, v in enumerate(value):
            spec = self.prefix[i] if i < len(self.prefix) else self.item
            out.append(v if spec is None else spec.visit(v, (*loc, i), fn))
        return out


class _Object(_Spec):
    def __init__(self, fields: dict[str, _Spec], extra: _Spec | None) -> None:
        self.fields, self.extra = fields, extra

    def visit(self, value: Any, loc: Loc, fn: Visit) -> Any:
        if not isinstance(value, dict):
            return value
        out = dict(value)
        for key, v in value.items():
            spec = self.fields.get(key, self.extra)
            if spec is not None:
                out[key] = spec.visit(v, (*loc, key), fn)
        return out


class _Union(_Spec):
    def __init__(self, choices: list[_Spec]) -> None:
        self.choices = choices

    def visit(self, value: Any, loc: Loc, fn: Visit) -> Any:
        # The value's JSON kind picks the choice; a string where any choice is a file is taken
        # as one, so that no server path reaches a model through a union's other branch.
        if isinstance(value, str):
            leaf = any(isinstance(c, _Leaf) for c in self.choices)
            return fn(loc, value) if leaf else value
        for choice in self.choices:
            if not isinstance(choice, _Leaf):
                value = choice.visit(value, loc, fn)
        return value


class _Lazy(_Spec):
    """A $ref still being built (a recursive model): looked up when visited."""

    def __init__(self, specs: dict[str, _Spec | None], ref: str) -> None:
        self.specs, self.ref = specs, ref

    def visit(self, value: Any, loc: Loc, fn: Visit) -> Any:
        spec = self.specs.get(self.ref)
        return value if spec is None else spec.visit(value, loc, fn)


class _Builder:
    """Reads a schema as schema._Compiler does, keeping only what leads to a file."""

    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root
        self._specs: dict[str, _Spec | None] = {}
        self._building: set[str] = set()

    def build(self, node: Any) -> _Spec | None:
        if not isinstance(node, dict) or not node:
            return None
        if "$ref" in node:
            return self._ref(node["$ref"])
        if "const" in node or "enum" in node:
            return None
        if node.get("format") in FILE_FORMATS:
            return _Leaf()
        for key in ("anyOf", "oneOf"):
            if key in node and isinstance(node[key], list):
                choices = [s for s in map(self.build, node[key]) if s is not None]
                return _Union(choices) if choices else None
        if isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
            return self.build(node["allOf"][0])
        kind = node.get("type")
        if isinstance(kind, list):
            choices = [s for s in (self.build({**node, "type": k}) for k in kind) if s]
            return _Union(choices) if choices else None
        if kind == "array":
            return self._array(node)
        if kind == "object" or "properties" in node:
            return self._object(node)
        return None

    def _array(self, node: dict[str, Any]) -> _Spec | None:
        prefix = node.get("prefixItems")
        prefix_specs = [self.build(n) for n in prefix] if isinstance(prefix, list) else []
        item = self.build(node.get("items", {}))
        if item is None and not any(prefix_specs):
            return None
        return _Items(item, prefix_specs)

    def _object(self, node: dict[str, Any]) -> _Spec | None:
        props = node.get("properties")
        fields = {}
        if isinstance(props, dict):
            fields = {k: s for k, s in ((k, self.build(v)) for k, v in props.items()) if s}
        extra = node.get("additionalProperties")
        extra_spec = self.build(extra) if "properties" not in node else None
        if not fields and extra_spec is None:
            return None
        return _Object(fields, extra_spec)

    def _ref(self, ref: str) -> _Spec | None:
        if ref in self._specs:
            return self._specs[ref]
        if ref in self._building:
            return _Lazy(self._specs, ref)
        self._building.add(ref)
        target: Any = self._root
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        spec = self.build(target)
        self._building.discard(ref)
        self._specs[ref] = spec
        return spec
