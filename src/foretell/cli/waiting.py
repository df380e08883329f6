"""Waiting for a prediction to end, however long it runs: its record polled, its status and
queue position shown on stderr (a spinner on a terminal, a line per change otherwise)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

ENDED = frozenset({"succeeded", "failed", "canceled"})
FIRST_POLL_S = 0.05  # a fast model has ended by the first look
MAX_POLL_S = 1.0  # a long one is looked at once a second


def describe(record: dict[str, Any]) -> str:
    """'pending, 3rd in the queue (about 4 s)', 'processing', …: what a waiting user sees."""
    status = str(record.get("status"))
    queue = record.get("queue")
    if status != "pending" or not isinstance(queue, dict) or queue.get("position") is None:
        return status
    where = f"{status}, position {queue['position']} of {queue.get('depth', '?')} in the queue"
    eta = queue.get("eta_s")
    return f"{where} (about {eta:.0f} s)" if isinstance(eta, int | float) else where


def wait_for(
    record: dict[str, Any],
    get: Callable[[str], dict[str, Any]],
    *,
    console: Console | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll `get(id)` until the record has ended, showing its progress; the ended record.
    The polls start fast and slow down to one a second."""
    shown = console or Console(stderr=True)
    interval = FIRST_POLL_S
    if record["status"] in ENDED:
        return record
    started = time.monotonic()
    if shown.is_terminal:
        with shown.status(_line(record, describe(record), started)) as spinner:
            while record["status"] not in ENDED:
                sleep(interval)
                interval = min(interval * 2, MAX_POLL_S)
                record = get(record["id"])
                spinner.update(_line(record, describe(record), started))
        return record
    # Not a terminal (a log, a pipe): a line when the status or the queue position moves,
    # not at each new estimate.
    shown.print(f"{record['id']}: {describe(record)}", highlight=False)
    seen = _step(record)
    while record["status"] not in ENDED:
        sleep(interval)
        interval = min(interval * 2, MAX_POLL_S)
        record = get(record["id"])
        if _step(record) != seen and record["status"] not in ENDED:
            shown.print(f"{record['id']}: {describe(record)}", highlight=False)
        seen = _step(record)
    return record


def _step(record: dict[str, Any]) -> tuple[object, object]:
    queue = record.get("queue")
    return record.get("status"), queue.get("position") if isinstance(queue, dict) else None


def _line(record: dict[str, Any], text: str, started: float) -> str:
    return f"{record['id']}: {text} [dim]({time.monotonic() - started:.0f} s)[/]"
