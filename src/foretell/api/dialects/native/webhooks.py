"""A prediction's webhook deliveries: every event and attempt, and redelivery of the last one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import Predictor, Reader
from foretell.api.dialects.native import render
from foretell.api.dialects.native.schemas import WebhookEventBody, WebhookLogBody
from foretell.api.openapi import errors
from foretell.api.responses import Json

router = APIRouter(prefix="/v1/predictions", tags=["webhooks"])


@router.get("/{prediction_id}/webhooks", responses={200: {"model": WebhookLogBody}, **errors(404)})
async def webhook_log(prediction_id: str, request: Request, caller: Reader) -> Response:
    prediction, events = await state.service(request).webhook_log(prediction_id, caller)
    return Json(
        {
            "prediction_id": prediction.id,
            "webhook": prediction.webhook,
            "webhook_status": render.webhook_status(prediction).value,
            "events": [render.webhook_delivery(e, attempts) for e, attempts in events],
        }
    )


@router.post(
    "/{prediction_id}/webhooks/redeliver",
    status_code=202,
    responses={202: {"model": WebhookEventBody}, **errors(404, 409)},
)
async def redeliver(prediction_id: str, request: Request, caller: Predictor) -> Response:
    """Send the prediction's last event again, under the same webhook-id."""
    event = await state.service(request).redeliver(prediction_id, caller)
    return Json(render.webhook_event(event), status_code=202)
