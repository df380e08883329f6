"""cli.waiting: a prediction polled to its end, its progress shown (a spinner on a terminal,
a line per change otherwise), the polls slowing to one a second."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from foretell.cli.waiting import MAX_POLL_S, describe, wait_for


def queued(position: int, eta: float) -> dict[str, Any]:
    return {
        "id": "p-1",
        "status": "pending",
        "queue": {"position": position, "depth": 4, "eta_s": eta},
    }


RECORDS = [
    queued(3, 9.0),
    queued(3, 8.0),  # a new estimate only
    queued(1, 2.0),
    {"id": "p-1", "status": "processing", "queue": None},
    *[{"id": "p-1", "status": "processing", "queue": None}] * 8,
    {"id": "p-1", "status": "succeeded", "output": 42},
]


def run(console: Console) -> tuple[dict[str, Any], list[float]]:
    pending = iter(RECORDS[1:])
    slept: list[float] = []
    record = wait_for(RECORDS[0], lambda _: next(pending), console=console, sleep=slept.append)
    return record, slept


def test_describe_says_the_queue_position_and_estimate() -> None:
    assert describe(queued(3, 9.4)) == "pending, position 3 of 4 in the queue (about 9 s)"
    assert describe({"status": "processing", "queue": None}) == "processing"


def test_plain_lines_only_when_the_status_or_position_moves() -> None:
    out = io.StringIO()
    record, slept = run(Console(file=out, force_terminal=False, width=200))
    assert record["output"] == 42
    assert out.getvalue().splitlines() == [
        "p-1: pending, position 3 of 4 in the queue (about 9 s)",
        "p-1: pending, position 1 of 4 in the queue (about 2 s)",
        "p-1: processing",
    ]
    assert slept[0] < 0.1  # fast at first, then once a second
    assert slept[-1] == MAX_POLL_S
    assert sorted(slept) == slept


def test_a_terminal_gets_a_spinner() -> None:
    out = io.StringIO()
    record, _ = run(Console(file=out, force_terminal=True, width=200))
    assert record["status"] == "succeeded"
    assert "\x1b[?25l" in out.getvalue()  # the cursor hidden while the spinner turns


def test_an_ended_record_is_returned_without_a_poll() -> None:
    done = {"id": "p-2", "status": "failed", "error": {"message": "boom"}}
    slept: list[float] = []
    assert (
        wait_for(done, lambda _: {}, console=Console(file=io.StringIO()), sleep=slept.append)
        is done
    )
    assert slept == []
