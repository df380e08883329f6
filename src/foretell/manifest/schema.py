"""Input/output schemas of a version (JSON Schema) and validation of inputs against them."""

from __future__ import annotations

import copy
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from itertools import islice
from typing import Annotated, Any, Literal, Union

from annotated_types import Ge, Gt, Le, Len, Lt, MultipleOf
from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    create_model,
    model_serializer,
)
from pydantic_core import SchemaError, SchemaValidator, core_schema

from foretell.errors import InvalidInput
from foretell.manifest.file_fields import (
    DIRECTORY_FORMAT,
    FILE_FORMATS,
    check_reference,
    file_fields,
    refuse_directory,
)

# typing's special forms subscripted with values computed at run time; `Any` keeps mypy out of it.
_ANNOTATED: Any = Annotated
_LITERAL: Any = Literal
_UNION: Any = Union
_SCALARS = (str, int, float, bool, type(None))
# JSON Schema 2020-12 keywords, as pydantic emits them; draft 4's boolean exclusive* are ignored.
_NUMBER_BOUNDS = [
    ("minimum", Ge),
    ("maximum", Le),
    ("exclusiveMinimum", Gt),
    ("exclusiveMaximum", Lt),
    ("multipleOf", MultipleOf),
]


@dataclass(frozen=True, slots=True)
class Signature:
    """What a loaded model accepts and returns, as JSON Schema objects."""

    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


class InputValidator:
    """Checks inputs against a version's input JSON Schema, reporting errors as FastAPI does.

    The schema is compiled once into a pydantic model; `ValueError` if it cannot be compiled.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self._schema = copy.deepcopy(schema)
        compiler = _Compiler(self._schema)
        try:
            self._model = compiler.compile()
        except ValueError:
            raise
        except Exception as exc:  # a malformed schema can trip pydantic anywhere: say so once
            raise ValueError(f"input schema cannot be compiled: {exc}") from exc
        # With only JSON-native values inside (no nested model, Enum or tuple), the validated
        # attributes are the answer: copying them skips a dump that costs more than validation.
        fields = self._model.model_fields.items()
        self._plain = [(n, f.alias or n) for n, f in fields] if compiler.plain else None
        # File fields take a URL, data: URI or stored file (never a server path); the service
        # resolves them to bytes, and finds them through `files` (None when there are none, so
        # inputs of other models are never walked).
        self.takes_files = compiler.takes_files
        self.files = file_fields(self._schema) if compiler.takes_files else None

    @property
    def json_schema(self) -> dict[str, Any]:
        """The schema this validator was built from, as given."""
        return self._schema

    def validate(self, data: Any) -> dict[str, Any]:
        """Return `data` validated, coerced and with defaults applied, or raise `InvalidInput`."""
        try:
            # Lax mode, as FastAPI validates: "3" and 3.0 pass for an integer, and so does a JSON
            # boolean (True -> 1), so an input a FastAPI-served model took is taken here too.
            # from_attributes=True is how FastAPI calls pydantic, hence its error types.
            validated = self._model.model_validate(data, from_attributes=True)
        except ValidationError as exc:
            raise InvalidInput(
                [field_error(e, ("input",)) for e in exc.errors(include_url=False)]
            ) from None
        if self._plain is not None:
            out = {alias: validated.__dict__[name] for name, alias in self._plain}
            return out | (validated.__pydantic_extra__ or {})
        # warnings=False: schema defaults are kept raw (as pydantic does) and need no warning.
        return validated.model_dump(mode="json", by_alias=True, warnings=False)


def field_error(error: Any, prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """One pydantic error in FastAPI's 422 shape (no url), loc under `prefix`, JSON-safe.

    The one renderer for both input validation and request-body validation, so the two agree."""
    out: dict[str, Any] = {
        "type": error["type"],
        "loc": [*prefix, *error["loc"]],
        "msg": error["msg"],
        "input": _jsonable(error.get("input")),
    }
    if "ctx" in error:
        out["ctx"] = {key: _jsonable(value) for key, value in error["ctx"].items()}
    return out


# How much of a refused value an error echoes: enough to recognise it, never so much that the
# error cannot be written (orjson writes 254 levels at most) or outweighs the request.
ECHO_DEPTH = 16
ECHO_ITEMS = 100
ECHO_CHARS = 1000


def _jsonable(value: Any, depth: int = 1) -> Any:
    if isinstance(value, str):
        return _clipped(value)
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, bytes):  # a request body FastAPI could not parse
        return _clipped(value.decode("utf-8", "replace"))
    if isinstance(value, list | tuple | dict) and depth > ECHO_DEPTH:
        return f"… (nested deeper than {ECHO_DEPTH} levels; not shown)"
    if isinstance(value, list | tuple):
        items = [_jsonable(v, depth + 1) for v in value[:ECHO_ITEMS]]
        if len(value) > ECHO_ITEMS:
            items.append(f"… ({len(value) - ECHO_ITEMS} more items)")
        return items
    if isinstance(value, dict):
        shown = {str(k): _jsonable(v, depth + 1) for k, v in islice(value.items(), ECHO_ITEMS)}
        if len(value) > ECHO_ITEMS:
            shown["…"] = f"{len(value) - ECHO_ITEMS} more keys"
        return shown
    return _clipped(str(value))  # e.g. the exception pydantic puts in ctx["error"]


def _clipped(text: str) -> str:
    if len(text) <= ECHO_CHARS:
        return text
    return f"{text[:ECHO_CHARS]}… ({len(text) - ECHO_CHARS} more characters)"


class _Compiler:
    """Turns one JSON Schema (with its `$defs`) into pydantic annotations and models."""

    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root
        self._refs: dict[str, Any] = {}
        self._forward: dict[str, str] = {}  # $ref being compiled -> its forward-ref name
        self._models: list[type[BaseModel]] = []
        self._python_re = False  # set once a pattern needs Python's re rather than Rust's
        self.plain = True  # whether validated values are all JSON-native, as parsed JSON is
        self.takes_files = False  # set once a field is typed as a file
        self._builders: dict[str, Callable[[dict[str, Any], str], Any]] = {
            "string": self._string,
            "integer": lambda node, _: _number(int, node),
            "number": lambda node, _: _number(float, node),
            "boolean": lambda *_: bool,
            "null": lambda *_: None,
            "array": self._array,
            "object": self._object,
        }

    def compile(self) -> type[BaseModel]:
        root = self._root
        if "$ref" in root:
            root = self._resolve(root["$ref"])
        if root.get("type", "object") != "object":
            raise ValueError(f"an input schema must describe an object, not {root.get('type')!r}")
        model = self._model(root, _name(root.get("title"), "Input"), top=True)
        self._rebuild()
        return model

    def annotation(self, node: Any, where: str) -> Any:
        """The annotation for one schema node; `where` names it in compile errors."""
        if not isinstance(node, dict) or not node:
            return Any  # `true`, `{}` and anything we cannot read accept every value
        if "$ref" in node:
            return self._ref(node["$ref"])
        if "const" in node:
            return self._literal([node["const"]])
        if "enum" in node:
            return self._literal(node["enum"])
        if node.get("format") in FILE_FORMATS:
            self.takes_files = True
            return _FILE
        if node.get("format") == DIRECTORY_FORMAT:
            return _DIRECTORY
        # oneOf's "exactly one" is not enforced; pydantic emits it only for tagged unions.
        for key in ("anyOf", "oneOf"):
            if key in node:
                return _UNION[tuple(self.annotation(n, f"{where}.{key}") for n in node[key])]
        if len(node.get("allOf", ())) == 1:
            return self.annotation(node["allOf"][0], f"{where}.allOf")
        kind = node.get("type")
        if isinstance(kind, list):
            return _UNION[tuple(self.annotation({**node, "type": k}, where) for k in kind)]
        build = self._builders.get(kind) if isinstance(kind, str) else None
        if build is None:
            return Any  # no type, an unknown type or a keyword we do not support
        return build(node, where)

    def _string(self, node: dict[str, Any], where: str) -> Any:
        pattern = node.get("pattern")
        # `format` (date-time, uuid, …) is not checked: the value passes on as a plain string.
        if not isinstance(pattern, str):
            return _constrained(str, _length(node, "Length"))
        if not self._python_re:
            self._python_re = not _rust_compiles(pattern, where)
        return _constrained(str, [*_length(node, "Length"), StringConstraints(pattern=pattern)])

    def _literal(self, values: list[Any]) -> Any:
        if not all(isinstance(v, _SCALARS) for v in values):
            return Any  # Literal cannot hold lists or objects; such enums go unchecked
        return _LITERAL[tuple(values)]

    def _array(self, node: dict[str, Any], where: str) -> Any:
        prefix = node.get("prefixItems")
        if isinstance(prefix, list) and node.get("items", False) is False:
            items = tuple(self.annotation(n, f"{where}.prefixItems") for n in prefix)
            self.plain = False
            return types.GenericAlias(tuple, items)  # a fixed-length tuple, as pydantic emits
        item = self.annotation(node.get("items", {}), f"{where}.items")
        # Len on the list itself keeps a tensor's check in pydantic-core: no per-element Python.
        return _constrained(types.GenericAlias(list, (item,)), _length(node, "Items"))

    def _object(self, node: dict[str, Any], where: str) -> Any:
        if "properties" not in node:
            extra = node.get("additionalProperties", True)
            if extra is not False:
                value = Any if extra is True else self.annotation(extra, f"{where}.*")
                return types.GenericAlias(dict, (str, value))
        return self._model(node, _name(node.get("title"), where))

    def _model(self, node: dict[str, Any], name: str, top: bool = False) -> type[BaseModel]:
        required = set(node.get("required", ()))
        fields: dict[str, Any] = {}
        omitted: dict[str, str] = {}
        for i, (prop, sub) in enumerate(node.get("properties", {}).items()):
            # Synthetic names with the property as alias: any JSON key works, even one that is
            # not an identifier or shadows a BaseModel attribute ("model_config", "json").
            field, ann = f"f{i}", self.annotation(sub, f"{name}.{prop}")
            if prop in required:
                fields[field] = (ann, Field(alias=prop))
            elif isinstance(sub, dict) and "default" in sub:
                fields[field] = (ann, Field(default=sub["default"], alias=prop))
            else:  # optional with a default the schema does not state: leave it out if unset
                fields[field] = (ann, Field(default=None, alias=prop))
                omitted[field] = prop
        self.plain = self.plain and top and not omitted
        return self._create(name, _extra(node, top), fields, omitted)

    def _create(
        self, name: str, extra: Any, fields: dict[str, Any], omitted: dict[str, str]
    ) -> type[BaseModel]:
        validators = {"_omit_unset": _omit_unset(omitted)} if omitted else {}
        engine: Literal["python-re", "rust-regex"] = (
            "python-re" if self._python_re else "rust-regex"
        )
        config = ConfigDict(extra=extra, protected_namespaces=(), regex_engine=engine)
        model: type[BaseModel] = create_model(
            name, __config__=config, __validators__=validators, **fields
        )
        self._models.append(model)
        return model

    def _ref(self, ref: str) -> Any:
        if ref in self._refs:
            return self._refs[ref]
        if ref in self._forward:  # a recursive model: resolved by _rebuild once it exists
            return self._forward[ref]
        target = self._resolve(ref)
        name = _name(target.get("title"), ref.rsplit("/", 1)[-1])
        self._forward[ref] = f"_Ref{len(self._forward)}"
        if "enum" in target and all(isinstance(v, _SCALARS) for v in target["enum"]):
            # An enum in $defs is a Python Enum on the producing side: an Enum here gives the
            # same error type ("enum", not "literal_error") that FastAPI would report.
            members = [(f"v{i}", v) for i, v in enumerate(target["enum"])]
            self.plain = False
            self._refs[ref] = Enum(name, members)
        else:
            self._refs[ref] = self.annotation(target, name)
        return self._refs[ref]

    def _resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"input schema: only local $ref are supported, not {ref!r}")
        node: Any = self._root
        for part in ref[2:].split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ValueError(f"input schema: $ref {ref!r} points at nothing usable")
        return node

    def _rebuild(self) -> None:
        if not any(not m.__pydantic_complete__ for m in self._models):
            return
        # A recursive model resolves to itself; any other recursive schema (a union, a list)
        # would recurse forever in pydantic, so its inner levels accept anything.
        namespace = {
            self._forward[ref]: ann if isinstance(ann, type) and issubclass(ann, BaseModel) else Any
            for ref, ann in self._refs.items()
        }
        for model in self._models:
            model.model_rebuild(_types_namespace=namespace)


def _rust_compiles(pattern: str, where: str) -> bool:
    """Whether pydantic's fast Rust regex takes `pattern`; ValueError if no engine does."""
    try:
        SchemaValidator(core_schema.str_schema(pattern=pattern))
        return True
    except SchemaError:
        pass
    # Rust regex lacks look-around and back-references; Python's re, closer to the ECMA-262
    # patterns JSON Schema uses, has them.
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"input schema: invalid pattern {pattern!r} at {where}: {exc}") from None
    return False


# A file: a string that may name one (file_fields.check_reference); a folder never.
_FILE = _ANNOTATED[str, AfterValidator(check_reference)]
_DIRECTORY = _ANNOTATED[str, PlainValidator(refuse_directory)]


def _number(base: type, node: dict[str, Any]) -> Any:
    bounds = [
        bound(node[key])
        for key, bound in _NUMBER_BOUNDS
        if isinstance(node.get(key), int | float) and not isinstance(node[key], bool)
    ]
    if base is float:  # lax mode reads "nan" and "inf" as numbers; JSON has neither, nor do models
        bounds.append(AllowInfNan(False))
    return _constrained(base, bounds)


def _length(node: dict[str, Any], suffix: str) -> list[Any]:
    low, high = node.get(f"min{suffix}"), node.get(f"max{suffix}")
    if not isinstance(low, int) and not isinstance(high, int):
        return []
    return [Len(low if isinstance(low, int) else 0, high if isinstance(high, int) else None)]


def _constrained(base: Any, constraints: list[Any]) -> Any:
    return _ANNOTATED[(base, *constraints)] if constraints else base


def _extra(node: dict[str, Any], top: bool) -> str:
    """Extra keys: the input itself rejects them (typos); nested objects follow the schema."""
    allowed = node.get("additionalProperties")
    if allowed is False:
        return "forbid"
    if allowed is not None:
        return "allow"  # a schema for the extra values goes unchecked: extras are untyped
    if top:  # an input without properties is schemaless: any object will do
        return "forbid" if "properties" in node else "allow"
    return "ignore"  # what pydantic, which emitted the schema, does with extras by default


def _omit_unset(omitted: dict[str, str]) -> Any:
    """A serializer dropping unset optional fields whose default the schema does not state."""

    def serialize(self: BaseModel, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        for field, alias in omitted.items():
            if field not in self.model_fields_set:
                data.pop(alias, None)
        return data

    return model_serializer(mode="wrap")(serialize)


def _name(title: Any, fallback: str) -> str:
    name = re.sub(r"\W", "_", title if isinstance(title, str) and title else fallback)
    return name if name.isidentifier() else f"_{name}"
