"""A prediction's webhook_status from its events' statuses, in the order they were sent."""

from __future__ import annotations

import pytest

from foretell.domain.webhook import DeliveryStatus, WebhookStatus, summarize

D, F, P, X = (
    DeliveryStatus.DELIVERED,
    DeliveryStatus.FAILING,
    DeliveryStatus.PENDING,
    DeliveryStatus.DEAD,
)


@pytest.mark.parametrize(
    ("statuses", "finished", "expected"),
    [
        ([], False, WebhookStatus.PENDING),  # its first event is not made yet
        ([], True, WebhookStatus.DELIVERED),  # it finished asking for nothing
        ([D, D], True, WebhookStatus.DELIVERED),
        ([D, P], False, WebhookStatus.PENDING),
        ([D, F, P], False, WebhookStatus.FAILING),
        ([X, P], False, WebhookStatus.DEAD),  # the worst wins while nothing newer arrived
        ([D, X], True, WebhookStatus.DEAD),
        ([X, D], True, WebhookStatus.DELIVERED),  # e.g. the last one redelivered: superseded
        ([X, D, F], True, WebhookStatus.FAILING),
        ([F, D, X], True, WebhookStatus.DEAD),
    ],
)
def test_the_worst_status_since_the_last_delivered_event_wins(
    statuses: list[DeliveryStatus], finished: bool, expected: WebhookStatus
) -> None:
    assert summarize(statuses, finished=finished) is expected
