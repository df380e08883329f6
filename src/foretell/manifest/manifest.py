"""`foretell.yaml`: parse and validate one version's manifest, naming file, field and reason."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from foretell.errors import ManifestError

MANIFEST_FILE = "foretell.yaml"
RuntimeName = Literal["onnx", "python", "sklearn", "forecast", "transformers"]
# process: each replica is a worker process (crash isolation; the default for user code).
# thread: replicas run on threads of the server process, no IPC; for code that releases the GIL.
# auto: thread when the runtime declares itself safe in-process (onnx), else process.
Isolation = Literal["auto", "process", "thread"]


class Batching(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_batch_size: int = Field(1, ge=1, le=4096)
    # 0: an idle replica takes what is queued at once; batches form from what accumulates
    # while replicas are busy, so a lone request never waits for a window.
    max_delay_ms: float = Field(0.0, ge=0, le=10_000)
    max_queue_size: int = Field(
        1024, ge=1, le=1_000_000, description="predictions waiting beyond those running"
    )


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    setup_s: float = Field(300.0, gt=0)
    predict_s: float = Field(60.0, gt=0)
    cancel_grace_s: float = Field(
        5.0, gt=0, le=600, description="how long a canceled prediction may take to stop"
    )
    deadline_s: float | None = Field(
        None, gt=0, le=24 * 3600, description="default Cancel-After for this model's predictions"
    )


class Manifest(BaseModel):
    """One version's manifest. `options` holds settings only its runtime understands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime: RuntimeName
    artifact: str | None = Field(
        None,
        description="the model's file (or folder), relative to this folder or absolute; or "
        "package:<module>/<path> for one an installed Python package ships",
    )
    predictor: str | None = Field(None, description="python runtime: 'module.py:ClassName'")
    description: str = ""
    # private: only keys of the model's owner (and admin keys) can see and run it.
    visibility: Literal["public", "private"] = "private"
    batching: Batching = Batching()
    replicas: int = Field(1, ge=1, le=64)
    isolation: Isolation = "auto"
    timeouts: Timeouts = Timeouts()
    options: dict[str, Any] = Field(default_factory=dict)


def load_manifest(folder: Path) -> Manifest:
    """Read `folder/foretell.yaml`; raises ManifestError with the file, field and reason."""
    path = folder / MANIFEST_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(
            path, None, f"missing; every version folder needs a {MANIFEST_FILE}"
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(path, None, f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ManifestError(path, None, "must be a mapping of fields, e.g. 'runtime: onnx'")
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ManifestError(path, field, first["msg"]) from exc
    _check_runtime_fields(path, manifest)
    return manifest


def _check_runtime_fields(path: Path, manifest: Manifest) -> None:
    if manifest.runtime == "python" and not manifest.predictor:
        raise ManifestError(
            path, "predictor", "required by runtime 'python', e.g. predict.py:Model"
        )
    if manifest.runtime in ("onnx", "sklearn", "transformers") and not manifest.artifact:
        raise ManifestError(path, "artifact", f"required by runtime '{manifest.runtime}'")
    if not manifest.artifact:
        return
    located = artifact_path(path.parent, manifest.artifact)
    if located is None:
        raise ManifestError(
            path, "artifact", f"'{manifest.artifact}': no installed package ships that"
        )
    if manifest.runtime == "transformers":  # a model folder (config, weights, tokenizer)
        if not located.is_dir():
            raise ManifestError(path, "artifact", f"folder '{manifest.artifact}' does not exist")
    elif not located.is_file():
        raise ManifestError(path, "artifact", f"file '{manifest.artifact}' does not exist")


PACKAGE = "package:"


def artifact_path(folder: Path, artifact: str) -> Path | None:
    """Where an artifact is: relative to the version's folder, absolute, or `package:mod/path`
    inside an installed package (None if that package is not installed)."""
    if not artifact.startswith(PACKAGE):
        return folder / artifact  # an absolute path stays absolute
    module, _, inner = artifact.removeprefix(PACKAGE).partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / inner
