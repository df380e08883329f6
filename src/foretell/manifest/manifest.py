"""`foretell.yaml`: parse and validate one version's manifest, naming file, field and reason."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from foretell.errors import ManifestError

MANIFEST_FILE = "foretell.yaml"
# A version folder holding it gets its own Python environment (foretell.builds).
REQUIREMENTS_FILE = "requirements.txt"
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


MAX_REPLICAS = 64


class ReplicaRange(BaseModel):
    """How many replicas may run: at least `min` (0: none while idle), at most `max`; one more
    starts when the oldest queued prediction has waited `target_wait_s`, and one idle for
    `idle_s` stops. `replicas: N` in a manifest is exactly N (min = max = N)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = Field(1, ge=0, le=MAX_REPLICAS, description="replicas kept running; 0 when idle")
    max: int = Field(1, ge=1, le=MAX_REPLICAS, description="replicas running at most")
    idle_s: float = Field(
        300.0, gt=0, le=7 * 24 * 3600, description="a replica idle this long stops, down to min"
    )
    target_wait_s: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="another replica starts when the oldest queued prediction waited this long",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ReplicaRange:
        if self.min > self.max:
            raise PydanticCustomError(
                "replica_range",
                "min ({min}) is above max ({max}): min must be at most max",
                {"min": self.min, "max": self.max},
            )
        return self

    @classmethod
    def exactly(cls, n: int) -> ReplicaRange:
        return cls(min=n, max=n)

    @property
    def fixed(self) -> bool:
        return self.min == self.max


# Ray's own resource names, set by num_cpus and num_gpus (Ray refuses them in `resources`) or
# by Ray itself.
_RAY_BUILTIN = ("CPU", "GPU", "memory", "object_store_memory")
# Ray counts resources in units of 1/10,000: a smaller non-zero request would be zero.
_RAY_UNIT = 0.0001


def _ray_quantity(name: str, value: float) -> float:
    if value != 0 and value < _RAY_UNIT:
        raise PydanticCustomError(
            "ray_quantity",
            "{name} = {value} is below Ray's smallest unit, 0.0001",
            {"name": name, "value": value},
        )
    return value


class RayOptions(BaseModel):
    """What each replica reserves on the Ray cluster; each replica is one Ray actor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_cpus: float = Field(1.0, ge=0, le=1024, description="CPUs reserved per replica")
    num_gpus: float = Field(0.0, ge=0, le=64, description="GPUs per replica; 0.5 shares one")
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="custom resources per replica, as the nodes declare them "
        "(ray start --resources), e.g. {'gpu_type:A100': 1}",
    )
    max_restarts: int = Field(
        3,
        ge=0,
        le=1000,
        description="times Ray restarts a replica's actor that died (its process or its node) "
        "before foretell replaces it with a new one",
    )
    # spread: a model's replicas on as many nodes as have room, so that one node lost leaves
    # the others serving. pack: Ray's default, which fills the local node first.
    strategy: Literal["spread", "pack"] = "spread"

    @field_validator("num_cpus", "num_gpus")
    @classmethod
    def _unit(cls, value: float, info: ValidationInfo) -> float:
        return _ray_quantity(str(info.field_name), value)

    @field_validator("resources")
    @classmethod
    def _custom(cls, resources: dict[str, float]) -> dict[str, float]:
        for name, value in resources.items():
            if not name.strip():
                raise PydanticCustomError("ray_resource", "a resource name must not be empty")
            if name in _RAY_BUILTIN:
                raise PydanticCustomError(
                    "ray_resource",
                    "'{name}' is Ray's own resource: set it with num_cpus or num_gpus "
                    "(memory and object_store_memory are not reserved per replica here)",
                    {"name": name},
                )
            if not 0 < value <= 1_000_000:
                raise PydanticCustomError(
                    "ray_resource",
                    "resource '{name}' = {value}: must be above 0 and at most 1,000,000",
                    {"name": name, "value": value},
                )
            _ray_quantity(f"resource '{name}'", value)
        return resources


class Placement(BaseModel):
    """Where a version's replicas run: on this machine (no `ray`), or as actors on the Ray
    cluster the server joined (`--ray-address`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ray: RayOptions | None = None


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
    replicas: ReplicaRange = Field(
        ReplicaRange(),
        description="N (exactly N), or {min, max, idle_s, target_wait_s}: between min (0 = "
        "none while idle) and max, following the queue",
    )
    isolation: Isolation = "auto"
    timeouts: Timeouts = Timeouts()
    # None: wherever the server's --placement puts models that do not say.
    placement: Placement | None = Field(
        None,
        description="'ray' or {ray: {num_cpus, num_gpus, resources, max_restarts, strategy}}: "
        "replicas as actors on the server's Ray cluster; 'local': on this machine",
    )
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("replicas", mode="before")
    @classmethod
    def _replicas_count(cls, value: Any) -> Any:
        """`replicas: N`, short for {min: N, max: N}; at least 1 (a range may have min 0)."""
        if isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= MAX_REPLICAS:
                raise PydanticCustomError(
                    "replicas",
                    "{value} replicas: a count must be 1 to {limit}; for none while idle, "
                    "give a range, e.g. replicas: {min: 0, max: 1}",
                    {"value": value, "limit": MAX_REPLICAS},
                )
            return {"min": value, "max": value}
        return value

    @field_validator("placement", mode="before")
    @classmethod
    def _placement_words(cls, value: Any) -> Any:
        """`placement: ray` and `placement: local`, short for {ray: {}} and {}."""
        if value == "ray":
            return {"ray": {}}
        if value == "local":
            return {}
        if isinstance(value, str):
            raise PydanticCustomError(
                "placement",
                "'{value}' is not a placement: 'ray', 'local', or a mapping with 'ray' holding "
                "num_cpus, num_gpus, resources, max_restarts or strategy",
                {"value": value},
            )
        return value


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
    _check_placement(path, manifest)
    _check_requirements(path, manifest)
    return manifest


def _check_requirements(path: Path, manifest: Manifest) -> None:
    """A requirements.txt means its own environment (foretell.builds), which only a replica
    process running that environment's interpreter can have."""
    if not (path.parent / REQUIREMENTS_FILE).is_file():
        return
    if manifest.isolation == "thread":
        raise ManifestError(
            path,
            "isolation",
            f"'thread' runs replicas in the server's own interpreter, but {REQUIREMENTS_FILE} "
            "asks for the model's own environment, which needs a process: use 'process' or "
            "'auto'",
        )
    if manifest.placement and manifest.placement.ray:
        raise ManifestError(
            path,
            "placement",
            f"its own environment ({REQUIREMENTS_FILE}) is not supported on Ray yet: place it "
            "locally ('placement: local'), or install its packages on the Ray nodes and drop "
            f"{REQUIREMENTS_FILE}",
        )


def _check_placement(path: Path, manifest: Manifest) -> None:
    if manifest.placement and manifest.placement.ray and manifest.isolation == "thread":
        raise ManifestError(
            path,
            "isolation",
            "'thread' runs replicas on the server's own threads, but 'placement' puts them on "
            "Ray as actor processes: drop one of the two",
        )


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
