"""Open Inference Protocol v2 routes: a translation over the PredictionService, nothing more."""

from __future__ import annotations

from fastapi import APIRouter

from foretell.api.errors import dialect
from foretell.errors import ForetellError

TAG = "oip-v2"
router = APIRouter(tags=[TAG])


def _error(exc: ForetellError, status: int) -> tuple[int, dict[str, str]]:
    return status, {"error": exc.message}


dialect(TAG, _error)
