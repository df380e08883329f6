"""How a prediction's record is kept, chosen once when it is created."""

from __future__ import annotations

from enum import Enum
from typing import Any


class Recording(Enum):
    """When a prediction's record is written."""

    # Answer only: nothing is ever written (a dialect's synchronous route; nothing to poll,
    # nothing to recover). Its caller waits.
    UNRECORDED = "unrecorded"
    # A waiting caller is answered with the finished record, so it is written once, when the
    # prediction ends (or when its caller stops waiting): one commit instead of two, and none
    # to wait for before it runs. Nothing is acknowledged before its record is durable.
    ON_END = "on end"
    # Asynchronous, or with a webhook (whose events are written with each status): inserted
    # before it is acknowledged, and written again at each status.
    EACH_STATUS = "each status"

    @classmethod
    def chosen(
        cls, *, wait_s: float | None, webhook: dict[str, Any] | None, record: bool
    ) -> Recording:
        """The policy for a request: whether its caller waits, has a webhook, wants a record."""
        if not wait_s or webhook is not None:
            return cls.EACH_STATUS
        return cls.ON_END if record else cls.UNRECORDED

    @property
    def kept(self) -> bool:
        """Whether anything of it is ever written."""
        return self is not Recording.UNRECORDED
