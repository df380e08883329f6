"""GPUX's default models: the ones `POST /predict` serves, and which of them a request picks.

Seed 003 shows one `/predict` answering both a tokenized request (`input_ids`,
`attention_mask` → `logits`) and a text one (`text` → `sentiment`), so a server may name several
default models; each request goes to the one whose inputs its keys are: every required input
present, nothing the model does not take. With one default model nothing is chosen: it answers
everything, in its own words (`Missing required input: …`)."""

from __future__ import annotations

from typing import Any

from foretell.config import Settings
from foretell.domain import ModelRef
from foretell.domain.access import Principal
from foretell.errors import InvalidRequest, ModelNotFound, ModelNotReady, NotFound
from foretell.service import PredictionService, VersionView

BY_NAME = "POST /models/{owner}/{name}/predict"


def candidates(
    service: PredictionService, settings: Settings, caller: Principal
) -> list[VersionView]:
    """The default models that `caller` may run (see `refs` and `visible`); never none."""
    return visible(service, refs(service, settings, caller), caller)


def refs(service: PredictionService, settings: Settings, caller: Principal) -> list[ModelRef]:
    """`--default-model` (one or more), else the repository's only model."""
    if settings.default_model:
        return [ModelRef.parse(name) for name in settings.default_model]
    models = service.catalog.models(caller)
    if len(models) != 1:
        raise NotFound(
            f"no default model: this server has {len(models)} models for this key; start it "
            f"with --default-model owner/name, or call {BY_NAME}"
        )
    (model,) = models
    return [ModelRef(model.owner, model.name)]


def visible(
    service: PredictionService, wanted: list[ModelRef], caller: Principal
) -> list[VersionView]:
    """The versions `wanted` resolve to that `caller` may see; none at all is the first one's
    404, so a caller learns no more about a private default model than its name would tell."""
    found: list[VersionView] = []
    first: ModelNotFound | None = None
    for ref in wanted:
        try:
            found.append(service.catalog.version(ref, caller))
        except ModelNotFound as exc:
            first = first or exc
    if not found and first is not None:
        raise first
    return found


def choose(candidates: list[VersionView], body: Any) -> VersionView:
    """The one candidate whose inputs are `body`'s keys; InvalidRequest naming every candidate
    and its inputs when none or several are, ModelNotReady while one that might be is loading."""
    if len(candidates) == 1:
        return candidates[0]
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object of named inputs")
    keys = set(body)
    matches = [v for v in candidates if v.signature and fits(keys, v.signature.input_schema)]
    if len(matches) == 1:
        return matches[0]
    sent = ", ".join(body) or "none"
    if matches:
        raise InvalidRequest(
            f"the inputs sent ({sent}) fit several default models: {described(matches)}; call "
            f"one by name: {BY_NAME}"
        )
    loading = [v for v in candidates if v.loading]
    if loading:  # its inputs are not known until it has loaded: it may be the one meant
        raise ModelNotReady(str(loading[0].ref), loading[0].status.value)
    raise InvalidRequest(
        f"the inputs sent ({sent}) fit none of the default models: {described(candidates)}; "
        f"send every required input of one of them and nothing else, or call one by name: {BY_NAME}"
    )


def fits(keys: set[str], schema: dict[str, Any]) -> bool:
    """Whether `keys` are inputs of this schema: all of its required ones, and no others."""
    properties = schema.get("properties", {})
    return set(schema.get("required", [])) <= keys and keys <= properties.keys()


def described(versions: list[VersionView]) -> str:
    """Each model and the inputs it takes, for an error message."""
    return "; ".join(_inputs(v) for v in versions)


def _inputs(version: VersionView) -> str:
    name = version.slug
    if version.signature is None:
        return f"{name} (failed to load; its inputs are unknown)"
    schema = version.signature.input_schema
    required = list(schema.get("required", []))
    optional = [n for n in schema.get("properties", {}) if n not in required]
    takes = f"{name} takes {', '.join(required) or 'no required inputs'}"
    return f"{takes}, optionally {', '.join(optional)}" if optional else takes
