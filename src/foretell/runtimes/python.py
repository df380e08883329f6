"""The `python` runtime: a user's Predictor class; its schema comes from `predict`'s annotations.

`predictor: predict.py:Model` in foretell.yaml names the file (inside the version folder) and the
class. The class is instantiated once and `setup()` called; then every input is validated against
the parameters of `predict` and passed to it as keywords. A generator (or async generator)
`predict` streams: each item it yields is checked against its `Iterator[X]` annotation and sent
as it comes. See `foretell.sdk` for the user side.
"""

from __future__ import annotations

import collections.abc
import contextlib
import hashlib
import importlib.util
import inspect
import mimetypes
import re
import sys
import traceback
import typing
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PydanticUserError,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic.fields import FieldInfo

from foretell.domain import OutputStream
from foretell.domain.files import FileData
from foretell.errors import InvalidInput, ManifestError, ModelLoadFailed
from foretell.manifest import ModelVersion, Signature
from foretell.manifest.file_fields import FileFields, file_fields, invalid
from foretell.manifest.manifest import MANIFEST_FILE
from foretell.manifest.schema import field_error
from foretell.runtimes.base import Stream, WithFiles
from foretell.runtimes.tempfiles import file_uris, local_files

_PREDICTOR = re.compile(r"^(?P<file>[\w./-]+\.py):(?P<cls>[A-Za-z_]\w*)$")
# A returned Path's format: the caller gets its URL, so the output schema says "uri".
_RETURNED_FILE = frozenset({"path"})
# typing's special forms subscripted with values known only at run time.
_ANNOTATED: Any = Annotated
_LITERAL: Any = Literal
# What a streaming predict may say it returns; X in Iterator[X] is each item's type.
_ITERATORS = frozenset(
    {
        collections.abc.Iterator,
        collections.abc.Iterable,
        collections.abc.Generator,
        collections.abc.AsyncIterator,
        collections.abc.AsyncIterable,
        collections.abc.AsyncGenerator,
    }
)


class PythonRuntime:
    """Imports the predictor module of a version folder and runs its class."""

    name = "python"
    in_process = False  # user code: a crash or a print must stay in its own process

    def check(self, version: ModelVersion) -> None:
        """Validate `predictor` and that no options are set; raises ManifestError."""
        _predictor_ref(version)

    def load(self, version: ModelVersion) -> PythonModel:
        """Import the module, instantiate the class, run `setup()`; raises ModelLoadFailed."""
        path, class_name = _predictor_ref(version)
        ref = str(version.ref)
        module = _import(version, path)
        cls = getattr(module, class_name, None)
        if not inspect.isclass(cls):
            defined = [n for n, v in vars(module).items() if inspect.isclass(v)]
            raise ModelLoadFailed(
                ref, f"{path.name} defines no class '{class_name}'; classes there: {defined}"
            )
        where = f"{path.name}: {class_name}.predict"
        predictor = _call(ref, path, f"{class_name}()", cls)
        predict = getattr(predictor, "predict", None)
        if not callable(predict):
            raise ModelLoadFailed(ref, f"{path.name}: class '{class_name}' has no predict method")
        if inspect.iscoroutinefunction(predict):
            raise ModelLoadFailed(
                ref,
                f"{where} is an async def returning one output: make it a plain def, or an "
                "async generator yielding its output's items",
            )
        streams = inspect.isgeneratorfunction(predict) or inspect.isasyncgenfunction(predict)
        hints = _hints(ref, where, predict)
        inputs, params = _input_model(ref, where, predict, hints)
        if streams:
            output, mode = _item_adapter(ref, where, hints)
        else:
            output, mode = _output_adapter(ref, where, hints), None
        setup = getattr(predictor, "setup", None)  # optional without the Predictor base
        if callable(setup):
            _call(ref, path, f"{class_name}.setup()", setup)
        return PythonModel(predict, inputs, params, output, mode)


class PythonModel:
    """A set-up predictor; each item of a batch is validated and predicted alone. With `mode`,
    `predict` is a generator: `output` checks each item it yields."""

    def __init__(
        self,
        predict: Callable[..., Any],
        inputs: type[BaseModel],
        params: dict[str, str],
        output: TypeAdapter[Any],
        mode: OutputStream | None = None,
    ) -> None:
        self._predict = predict
        self._inputs = inputs
        self._params = params
        self._output = output
        self._mode = mode
        input_schema = file_uris(inputs.model_json_schema())
        output_schema = output.json_schema(mode="serialization")
        if mode is not None:
            output_schema = _iterator_schema(output_schema, mode)
        self._signature = Signature(input_schema, file_uris(output_schema, _RETURNED_FILE))
        # Inputs with files get them as local temporary files; others are never walked.
        self._files = file_fields(input_schema)

    @property
    def signature(self) -> Signature:
        return self._signature

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The JSON-ready output of `predict(**item)` for each item, in order; one holding files
        the model wrote (paths it returned, read into FileData) comes as WithFiles."""
        if self._files is not None:
            return [self._with_local_files(item, self._files) for item in batch]
        return [self._one(item) for item in batch]

    def _with_local_files(self, item: Mapping[str, Any], files: FileFields) -> Any:
        # The server sends each file's bytes; a string left in a file's place was never resolved
        # and could name a server path: refused, never opened.
        unresolved = files.find(dict(item))
        if unresolved:
            raise InvalidInput([invalid(loc, value) for loc, value in unresolved])
        # The files are removed when this prediction ends, after its own output files were read
        # (a stream's: once it has ended).
        with contextlib.ExitStack() as stack:
            output = self._one(stack.enter_context(local_files(item)))
            if type(output) is Stream:
                return Stream(_closing(output.items, stack.pop_all()), output.mode)
            return output

    def _one(self, item: Mapping[str, Any]) -> Any:
        try:
            validated = self._inputs.model_validate(item)
        except ValidationError as exc:
            # A validator the JSON schema cannot show (an AfterValidator) refuses it here: the
            # same shape as the server's schema errors, under `input`, JSON-safe.
            errors = exc.errors(include_url=False)
            raise InvalidInput([field_error(e, ("input",)) for e in errors]) from None
        kwargs = {param: getattr(validated, field) for field, param in self._params.items()}
        if self._mode is not None:
            return Stream(self._items(self._predict(**kwargs)), self._mode)
        files: dict[str, FileData] = {}
        result = _plain(self._predict(**kwargs), files)
        try:
            value = self._output.validate_python(result)
        except ValidationError as exc:
            raise ValueError(
                f"predict() returned a {type(result).__name__} that does not match its return "
                f"annotation: {exc.errors(include_url=False)[0]['msg']}"
            ) from None
        output = self._output.dump_python(value, mode="json")
        return WithFiles(_with_files(output, files)) if files else output

    def _items(
        self, items: Iterator[Any] | AsyncIterator[Any]
    ) -> Iterator[Any] | AsyncIterator[Any]:
        """The generator's items, each checked and made JSON-ready as it comes."""
        if isinstance(items, AsyncIterator):
            return self._async_items(items)
        return (self._item(item) for item in items)

    async def _async_items(self, items: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for item in items:
            yield self._item(item)

    def _item(self, item: Any) -> Any:
        files: dict[str, FileData] = {}
        plain = _plain(item, files)
        if files:
            raise ValueError(
                "predict() yielded a path: a streaming predict's items cannot be files yet"
            )
        try:
            value = self._output.validate_python(plain)
        except ValidationError as exc:
            raise ValueError(
                f"predict() yielded a {type(item).__name__} that does not match its return "
                f"annotation's item type: {exc.errors(include_url=False)[0]['msg']}"
            ) from None
        return self._output.dump_python(value, mode="json")


def _closing(
    items: Iterator[Any] | AsyncIterator[Any], stack: contextlib.ExitStack
) -> Iterator[Any] | AsyncIterator[Any]:
    """`items`, closing `stack` (the input's local files) once they have ended."""
    if isinstance(items, AsyncIterator):
        return _async_closing(items, stack)
    return _sync_closing(items, stack)


def _sync_closing(items: Iterator[Any], stack: contextlib.ExitStack) -> Iterator[Any]:
    with stack:
        yield from items


async def _async_closing(
    items: AsyncIterator[Any], stack: contextlib.ExitStack
) -> AsyncIterator[Any]:
    with stack:
        async for item in items:
            yield item


def _iterator_schema(items: dict[str, Any], mode: OutputStream) -> dict[str, Any]:
    """A streamed output's schema, as Cog writes it: an array of the items, marked as coming
    one by one (and, for text, shown concatenated)."""
    items = dict(items)
    defs = items.pop("$defs", None)
    schema: dict[str, Any] = {"type": "array", "items": items, "x-cog-array-type": "iterator"}
    if mode is OutputStream.TEXT:
        schema["x-cog-array-display"] = "concatenate"
    if defs is not None:
        schema["$defs"] = defs
    return schema


def _predictor_ref(version: ModelVersion) -> tuple[Path, str]:
    manifest = version.path / MANIFEST_FILE
    if version.manifest.options:
        raise ManifestError(manifest, "options", "the python runtime takes no options")
    text = version.manifest.predictor or ""
    match = _PREDICTOR.match(text)
    if match is None:
        raise ManifestError(
            manifest, "predictor", f"'{text}' is not 'file.py:ClassName', e.g. predict.py:Model"
        )
    folder = version.path.resolve()
    path = (folder / match["file"]).resolve()
    if not path.is_relative_to(folder):
        raise ManifestError(manifest, "predictor", f"'{match['file']}' is outside the folder")
    if not path.is_file():
        raise ManifestError(manifest, "predictor", f"file '{match['file']}' does not exist")
    return path, match["cls"]


def _import(version: ModelVersion, path: Path) -> ModuleType:
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:10]
    slug = re.sub(r"\W", "_", version.name)
    name = f"foretell_model_{slug}_{version.number}_{digest}"
    folder = str(path.parent)
    # Only a folder with sibling modules goes on sys.path: it may shadow installed packages.
    if _has_siblings(path) and folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    # A .py file always gets a spec and a source loader.
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _call(str(version.ref), path, f"importing {path.name}", spec.loader.exec_module, module)
    return module


def _has_siblings(path: Path) -> bool:
    return any(
        p != path and (p.suffix == ".py" or (p / "__init__.py").is_file())
        for p in path.parent.iterdir()
    )


def _call(ref: str, path: Path, what: str, func: Callable[..., Any], *args: Any) -> Any:
    """Run user code; anything it raises becomes ModelLoadFailed saying where."""
    try:
        return func(*args)
    except (Exception, SystemExit) as exc:
        raise ModelLoadFailed(
            ref, f"{what} raised {type(exc).__name__}: {exc}{_location(exc, path)}"
        ) from exc


def _location(exc: BaseException, path: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return f" (at {path.name}:{frames[-1].lineno})" if frames else ""


def _hints(ref: str, where: str, predict: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(predict, include_extras=True)
    except Exception as exc:  # e.g. NameError for a string annotation naming nothing
        raise ModelLoadFailed(ref, f"{where}: annotations cannot be resolved: {exc}") from exc


def _input_model(
    ref: str, where: str, predict: Callable[..., Any], hints: dict[str, Any]
) -> tuple[type[BaseModel], dict[str, str]]:
    fields: dict[str, Any] = {}
    params: dict[str, str] = {}
    for i, param in enumerate(inspect.signature(predict).parameters.values()):
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise ModelLoadFailed(
                ref, f"{where}: parameter '{param.name}' must be a named, typed parameter"
            )
        if param.name not in hints:
            raise ModelLoadFailed(
                ref,
                f"{where}: parameter '{param.name}' has no type annotation; "
                f"annotate it, e.g. `{param.name}: str`",
            )
        info = _field_info(param.default)
        annotation = _choices(ref, where, param.name, hints[param.name], info)
        # Synthetic field names with the parameter as alias: a parameter may be called
        # anything, even `json` or `model_config`, without clashing with BaseModel.
        fields[f"p{i}"] = (_ANNOTATED[annotation, info], Field(alias=param.name))
        params[f"p{i}"] = param.name
    try:
        model: type[BaseModel] = create_model(
            "Input", __config__=ConfigDict(extra="forbid"), **fields
        )
        model.model_json_schema()
    except (PydanticUserError, TypeError, ValueError) as exc:
        raise ModelLoadFailed(ref, f"{where}: inputs cannot be described as JSON: {exc}") from exc
    return model, params


def _field_info(default: Any) -> FieldInfo:
    if isinstance(default, FieldInfo):
        return default
    field: FieldInfo = Field(... if default is inspect.Parameter.empty else default)
    return field


def _choices(ref: str, where: str, name: str, annotation: Any, info: FieldInfo) -> Any:
    """`Input(choices=...)` becomes a Literal, so pydantic checks it; each must fit the type."""
    extra = info.json_schema_extra
    if not isinstance(extra, dict) or "enum" not in extra:
        return annotation
    choices = extra["enum"]
    assert isinstance(choices, list)
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    for choice in choices:
        try:
            adapter.validate_python(choice, strict=True)
        except ValidationError:
            raise ModelLoadFailed(
                ref, f"{where}: choice {choice!r} of parameter '{name}' is not a {annotation}"
            ) from None
    return _LITERAL[tuple(choices)]


def _output_adapter(ref: str, where: str, hints: dict[str, Any]) -> TypeAdapter[Any]:
    annotation = hints.get("return", Any)
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        adapter.json_schema(mode="serialization")
    except (PydanticUserError, TypeError, ValueError) as exc:
        raise ModelLoadFailed(
            ref, f"{where}: return annotation cannot be described as JSON: {exc}"
        ) from exc
    return adapter


def _item_adapter(
    ref: str, where: str, hints: dict[str, Any]
) -> tuple[TypeAdapter[Any], OutputStream]:
    """A generator predict's item type, from `-> Iterator[X]` (or Generator, AsyncIterator...):
    text when X is str, else a list of items."""
    annotation = hints.get("return", Any)
    if annotation is Any:
        item: Any = Any
    elif typing.get_origin(annotation) in _ITERATORS:
        args = typing.get_args(annotation)
        item = args[0] if args else Any
    else:
        raise ModelLoadFailed(
            ref,
            f"{where} is a generator, so its return annotation must be Iterator[X] (e.g. "
            f"Iterator[str] for text), not {annotation}",
        )
    adapter = _output_adapter(ref, where, {"return": item})
    return adapter, OutputStream.TEXT if item is str else OutputStream.ITEMS


_SCALARS = frozenset({float, int, str, bool, type(None)})


def _plain(value: Any, files: dict[str, FileData]) -> Any:
    """numpy values as Python ones, so outputs serialize whatever the annotation says; each
    Path is read into `files` (by its text, which is how the output's dump writes it) and left
    in place, so the return annotation still checks it."""
    if type(value) in _SCALARS:  # most leaves: nothing to check (4x faster on 1024 floats)
        return value
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v, files) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, files) for v in value]
    if isinstance(value, Path) and str(value) not in files:
        files[str(value)] = _read(value)
    return value


def _read(path: Path) -> FileData:
    """The file a model returned; a path that is not a readable regular file is its error."""
    try:
        if not path.is_file():
            what = "nothing" if not path.exists() else "not a regular file"
            raise ValueError(f"predict() returned the path '{path}', but it is {what}")
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"predict() returned the path '{path}', which cannot be read: {exc.strerror or exc}"
        ) from None
    # A guess by name; the server sniffs the bytes when it stores them.
    kind = mimetypes.guess_type(path.name, strict=False)[0] or "application/octet-stream"
    return FileData(path.name, kind, data)


def _with_files(value: Any, files: dict[str, FileData]) -> Any:
    """The dumped output with each returned path's text replaced by its file's data."""
    if isinstance(value, str):
        return files.get(value, value)
    if isinstance(value, dict):
        return {k: _with_files(v, files) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_files(v, files) for v in value]
    return value


RUNTIME = PythonRuntime()
