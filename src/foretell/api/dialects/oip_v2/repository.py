"""Triton's model configuration, statistics and repository extension (index, load, unload).

Load and unload act on every version of the model named (Triton's name is foretell's
`owner/name`) through the service's lifecycle, and answer once each has settled: a load
starts a stopped version (or retries a failed one) and waits until it is ready, an unload
drains each version's work in flight and stops it. Triton's load parameters (`config`,
`file:…`) override a model's configuration, which in foretell is its foretell.yaml: they are
refused by name, as any other load parameter is; unload reads `unload_dependents` (a boolean;
foretell has no ensembles, so no dependents) and ignores the rest, as Triton does. The index
shows each version READY, LOADING (building or deploying), UNLOADING (stopped, draining the
work it had taken) or UNAVAILABLE with the reason: "unloaded", or why it failed.

The configuration is derived from the manifest and the same tensor specs model metadata
advertises. Statistics are those this process counted since it began serving each version
(another process sharing the store counts its own); foretell does not time a batch's input and
output conversion apart from its run, so compute_input and compute_output are zero, its whole
batch time is compute_infer, there is no response cache (cache_hit and cache_miss zero), and
batch_stats is empty."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foretell.api.dialects.oip_v2 import dataplane, specs
from foretell.domain import DeploymentStatus, ModelRef
from foretell.domain.access import Principal
from foretell.errors import InvalidRequest, echo
from foretell.service import PredictionService, StatisticsView, Tallied, VersionView

# Triton's backend for each runtime it has one for; any other runtime is named as itself.
_BACKENDS = {"onnx": ("onnxruntime_onnx", "onnxruntime"), "python": ("", "python")}
_NONE = {"count": 0, "ns": 0}
# What the server metadata lists, in Triton's names: the repository extension (its optional
# unload_dependents taken), and over HTTP the configuration and statistics too.
REPOSITORY_EXTENSIONS = ("model_repository", "model_repository(unload_dependents)")
HTTP_EXTENSIONS = (*REPOSITORY_EXTENSIONS, "model_configuration", "statistics")


def config(version: VersionView) -> dict[str, Any]:
    """Triton's model configuration of `version`; ModelNotReady until it has loaded."""
    found = dataplane.signature(version)
    runtime = version.runtime or "unknown"
    platform, backend = _BACKENDS.get(runtime, ("", runtime))
    batching = version.batching
    # A version that takes one prediction at a time does not batch: Triton's 0.
    max_batch = batching.max_batch_size if batching and batching.max_batch_size > 1 else 0
    outputs = specs.outputs(found.output_schema) or {}
    body: dict[str, Any] = {
        "name": version.slug,
        "platform": platform,
        "backend": backend,
        "version_policy": {"specific": {"versions": [version.number]}},
        "max_batch_size": max_batch,
        "input": [_tensor(s, max_batch) for s in specs.inputs(found.input_schema).values()],
        "output": [_tensor(s, max_batch) for s in outputs.values()],
        "instance_group": [
            {"name": version.slug, "kind": _kind(version), "count": version.replicas_max}
        ],
    }
    if batching and max_batch:
        body["dynamic_batching"] = {
            "max_queue_delay_microseconds": round(batching.max_delay_ms * 1000),
            "default_queue_policy": {"max_queue_size": batching.max_queue_size},
        }
    return body


def _tensor(spec: specs.TensorSpec, max_batch: int) -> dict[str, Any]:
    dims = list(spec.shape)
    if max_batch and len(dims) > 1:
        dims = dims[1:]  # Triton leaves the batch dimension out of a batching model's dims
    datatype = "STRING" if spec.datatype == "BYTES" else spec.datatype  # Triton's word for it
    return {"name": spec.name, "data_type": f"TYPE_{datatype}", "dims": dims}


def _kind(version: VersionView) -> str:
    device = str(version.options.get("device", "cpu")).lower()
    return "KIND_GPU" if device.startswith(("cuda", "gpu")) else "KIND_CPU"


def statistics(
    service: PredictionService,
    caller: Principal,
    owner: str | None = None,
    name: str | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """Triton's statistics response: of one version (`version`), every version of one model
    (`owner/name`), or every version `caller` may see (no model named)."""
    catalog = service.catalog
    refs: list[ModelRef] | None = None
    if owner is not None and name is not None:
        if version is not None:
            refs = [dataplane.version(service, owner, name, version, caller).ref]
        else:
            refs = [v.ref for v in catalog.model(owner, name, caller).versions]
    return {"model_stats": [_stats(s) for s in catalog.statistics(caller, refs)]}


def _stats(found: StatisticsView) -> dict[str, Any]:
    return {
        "name": found.version.slug,
        "version": str(found.version.number),
        "last_inference": found.last_inference_ms,
        "inference_count": found.success.count,
        "execution_count": found.executions,
        "inference_stats": {
            "success": _tally(found.success),
            "fail": _tally(found.fail),
            "queue": _tally(found.queue),
            "compute_input": _NONE,
            "compute_infer": _tally(found.compute_infer),
            "compute_output": _NONE,
            "cache_hit": _NONE,
            "cache_miss": _NONE,
        },
        "batch_stats": [],
    }


def _tally(tally: Tallied) -> dict[str, int]:
    return {"count": tally.count, "ns": tally.ns}


def index(service: PredictionService, caller: Principal, ready_only: bool) -> list[dict[str, str]]:
    """Every version `caller` may see (only those ready, if asked), with its state."""
    return [
        _entry(v)
        for model in service.catalog.models(caller)
        for v in model.versions
        if v.ready or not ready_only
    ]


def _entry(version: VersionView) -> dict[str, str]:
    if version.ready:
        state, reason = "READY", ""
    elif version.loading:
        state, reason = "LOADING", ""
    elif version.status is DeploymentStatus.STOPPED and version.replicas_running:
        state, reason = "UNLOADING", ""  # stopped, still draining the work it had taken
    elif version.status is DeploymentStatus.STOPPED:
        state, reason = "UNAVAILABLE", "unloaded"  # Triton's reason for a model it unloaded
    else:
        state, reason = "UNAVAILABLE", version.error or version.status.value
    return {"name": version.slug, "version": str(version.number), "state": state, "reason": reason}


def check_load_parameters(parameters: Mapping[str, Any]) -> None:
    """Refuse what a load may not ask here: every parameter (see the module's docstring)."""
    for key in parameters:
        why = (
            "a model's configuration is its foretell.yaml, and a load cannot override it"
            if key == "config" or key.startswith("file:")
            else "foretell's load takes no parameters"
        )
        raise InvalidRequest(f"unrecognized load parameter '{echo(key)}': {why}")


def check_unload_parameters(parameters: Mapping[str, Any]) -> None:
    """`unload_dependents` must be a boolean; Triton ignores any other parameter, and so do we."""
    dependents = parameters.get("unload_dependents", False)
    if not isinstance(dependents, bool):
        raise InvalidRequest(
            f"unload parameter 'unload_dependents' must be a boolean, not "
            f"{type(dependents).__name__}"
        )


async def load(service: PredictionService, owner: str, name: str, caller: Principal) -> None:
    """Start every version of `owner/name` that is not running, and wait for each to settle;
    the first one that failed (the others loaded all the same) is the answer's error."""
    lifecycle = service.lifecycle
    versions = service.catalog.model(owner, name, caller).versions
    loaded = [await lifecycle.load(version.ref, caller) for version in versions]
    for version in loaded:
        if version.status is DeploymentStatus.FAILED:
            raise version.load_error()


async def unload(service: PredictionService, owner: str, name: str, caller: Principal) -> None:
    """Drain and stop every version of `owner/name`."""
    lifecycle = service.lifecycle
    for version in service.catalog.model(owner, name, caller).versions:
        await lifecycle.unload(version.ref, caller)
