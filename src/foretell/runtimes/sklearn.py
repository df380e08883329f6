"""The `sklearn` runtime: scikit-learn estimators saved with skops; raw pickle is refused.

Input `{"features": [[x1, …, xn], …]}` (one row per sample, n = the estimator's n_features_in_);
output `{"predictions": [...]}`, plus `"probabilities": [[...], …]` for classifiers with
predict_proba (columns in the order of `x-classes`).

Options (`options:` in foretell.yaml):
    trusted_types: the exact list of types the skops file may instantiate beyond skops' defaults,
        as printed by `skops.io.get_untrusted_types(file=...)`; review them before trusting.
"""

from __future__ import annotations

import sys
import threading
import zipfile
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from foretell.errors import ManifestError, ModelLoadFailed
from foretell.manifest import ModelVersion, Signature
from foretell.manifest.manifest import MANIFEST_FILE

_OPTIONS = ("trusted_types",)
# skops.io runs sklearn's all_estimators() on import, whose package walk imports sklearn's
# vendored array_api_compat.torch, and with it torch wherever torch is installed (the
# transformers extra): ~0.6 s and ~180 MB in every sklearn worker, for no estimator.
_TORCH_SHIM = "sklearn.externals.array_api_compat.torch"
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
_PICKLE_REFUSED = (
    "raw pickle is refused (it can run arbitrary code); save the model with skops.io.dump "
    "and list its types in options.trusted_types"
)


class SklearnRuntime:
    """Loads skops files holding a fitted scikit-learn estimator."""

    name = "sklearn"
    in_process = False  # scikit-learn holds the GIL for much of predict()

    def check(self, version: ModelVersion) -> None:
        """Refuse pickles and non-skops files, validate the options; raises ManifestError."""
        path = _artifact(version)
        manifest = version.path / MANIFEST_FILE
        if path.suffix.lower() in _PICKLE_SUFFIXES or not zipfile.is_zipfile(path):
            raise ManifestError(manifest, "artifact", f"'{path.name}': {_PICKLE_REFUSED}")
        _trusted_types(version)

    def load(self, version: ModelVersion) -> SklearnModel:
        """Load the estimator, trusting only the listed types; raises ModelLoadFailed."""
        self.check(version)
        path = _artifact(version)
        trusted = _trusted_types(version)
        ref = str(version.ref)
        try:
            untrusted = _skops_io().get_untrusted_types(file=path)
        except Exception as exc:  # skops/zipfile errors on a damaged file: translated here
            raise ModelLoadFailed(
                ref, f"'{path.name}' is not a readable skops file: {exc}"
            ) from exc
        missing = sorted(set(untrusted) - set(trusted))
        if missing:
            raise ModelLoadFailed(
                ref,
                f"'{path.name}' uses types not listed in options.trusted_types: {missing}. "
                "Review them; if you trust them, add them to options.trusted_types in "
                f"{MANIFEST_FILE}.",
            )
        try:
            estimator = _skops_io().load(path, trusted=trusted)
        except Exception as exc:
            raise ModelLoadFailed(ref, f"skops cannot load '{path.name}': {exc}") from exc
        n_features = getattr(estimator, "n_features_in_", None)
        if not callable(getattr(estimator, "predict", None)) or not isinstance(n_features, int):
            raise ModelLoadFailed(
                ref,
                f"'{path.name}' holds a {type(estimator).__name__}, not a fitted estimator "
                "with predict() and n_features_in_; fit it before saving",
            )
        return SklearnModel(estimator, n_features)


class SklearnModel:
    """A fitted estimator; a batch's rows are stacked into one predict call."""

    def __init__(self, estimator: Any, n_features: int) -> None:
        self._estimator = estimator
        self._n_features = n_features
        self._proba = callable(getattr(estimator, "predict_proba", None))
        self._signature = Signature(_input_schema(n_features), _output_schema(estimator))

    @property
    def signature(self) -> Signature:
        return self._signature

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One `{"predictions": [...], ["probabilities": [[...]]]}` per item, in order."""
        if not batch:
            return []
        rows = [self._rows(item, i) for i, item in enumerate(batch)]
        features = np.concatenate(rows)
        cuts = np.cumsum([len(r) for r in rows])[:-1]
        outputs: dict[str, list[np.ndarray]] = {
            "predictions": np.split(self._estimator.predict(features), cuts)
        }
        if self._proba:
            outputs["probabilities"] = np.split(self._estimator.predict_proba(features), cuts)
        return [
            {key: parts[i].tolist() for key, parts in outputs.items()} for i in range(len(rows))
        ]

    def _rows(self, item: Mapping[str, Any], index: int) -> np.ndarray:
        if "features" not in item:
            raise ValueError(f"item {index}: input 'features' is missing")
        try:
            rows = np.asarray(item["features"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"item {index}: 'features' is not a table of numbers: {exc}") from None
        if rows.ndim != 2 or rows.shape[1] != self._n_features or len(rows) == 0:
            raise ValueError(
                f"item {index}: 'features' has shape {list(rows.shape)}; expected one or more "
                f"rows of {self._n_features} numbers each"
            )
        return rows


def _input_schema(n_features: int) -> dict[str, Any]:
    row = {
        "type": "array",
        "items": {"type": "number"},
        "minItems": n_features,
        "maxItems": n_features,
    }
    features = {
        "type": "array",
        "items": row,
        "minItems": 1,
        "description": f"rows of {n_features} features each",
    }
    return {
        "type": "object",
        "properties": {"features": features},
        "required": ["features"],
        "additionalProperties": False,
    }


def _output_schema(estimator: Any) -> dict[str, Any]:
    classes = getattr(estimator, "classes_", None)
    label: dict[str, Any] = {"type": "number"}
    if classes is not None:
        label = {"type": _json_type(np.asarray(classes).dtype)}
    properties: dict[str, Any] = {"predictions": {"type": "array", "items": label}}
    if callable(getattr(estimator, "predict_proba", None)) and classes is not None:
        width = len(classes)
        row = {"type": "array", "items": {"type": "number"}, "minItems": width, "maxItems": width}
        properties["probabilities"] = {
            "type": "array",
            "items": row,
            "x-classes": np.asarray(classes).tolist(),
        }
    return {"type": "object", "properties": properties, "required": list(properties)}


def _json_type(dtype: np.dtype[Any]) -> str:
    if dtype.kind == "b":
        return "boolean"
    if dtype.kind in "iu":
        return "integer"
    if dtype.kind == "f":
        return "number"
    return "string"


def _trusted_types(version: ModelVersion) -> list[str]:
    options = version.manifest.options
    manifest = version.path / MANIFEST_FILE
    for key in options:
        if key not in _OPTIONS:
            raise ManifestError(
                manifest,
                f"options.{key}",
                f"unknown option for runtime 'sklearn'; it understands: {', '.join(_OPTIONS)}",
            )
    trusted = options.get("trusted_types", [])
    if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
        raise ManifestError(
            manifest,
            "options.trusted_types",
            "must be a list of type names, e.g. ['sklearn.tree._tree.Tree'], as printed by "
            "skops.io.get_untrusted_types(file=...)",
        )
    return trusted


def _artifact(version: ModelVersion) -> Path:
    if version.manifest.artifact is None:
        raise ManifestError(
            version.path / MANIFEST_FILE, "artifact", "required by runtime 'sklearn'"
        )
    return version.path / version.manifest.artifact


_SKOPS_IMPORT = threading.Lock()


@cache
def _skops_io() -> ModuleType:
    """skops.io, imported without torch: a None in sys.modules makes the walk's import of the
    torch shim fail, which the walk skips; it is undone right after. The block is process-wide
    for that moment: with thread replicas, another import of the shim then would fail too."""
    with _SKOPS_IMPORT:
        shimmed = _TORCH_SHIM not in sys.modules
        if shimmed:
            sys.modules[_TORCH_SHIM] = None  # type: ignore[assignment]
        try:
            import skops.io
        finally:
            if shimmed:
                del sys.modules[_TORCH_SHIM]
    module: ModuleType = skops.io
    return module


RUNTIME = SklearnRuntime()
