"""A prediction's events printed as they come: output to stdout, logs to stderr, and the exit
status its end deserves (0 succeeded, 1 failed or canceled)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from foretell.client import StreamEvent


class Printer:
    """Writes each event where it belongs. A text stream's pieces are written as they are,
    without newlines; the items of a list stream (and a whole output) are JSON, one a line.
    Which of the two an output event is, its id tells (an event's id counts a text stream's
    output in characters and a list stream's in items), so nothing more is asked of the server;
    a one-character event is the one case it cannot tell, written as the last one was."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out, self.err = out or sys.stdout, err or sys.stderr  # as they are now
        self.output = 0  # the output position of the last event's id
        self.text = True  # whether output events are a text stream's pieces
        self.pending_newline = False  # something is written on stdout's last line
        self.status = "unknown"
        self.error = ""

    def show(self, event: StreamEvent) -> None:
        if event.event == "output":
            self._output(event)
        elif event.event == "logs":
            self.err.write(event.data)
            self.err.flush()
        elif event.event == "error":
            error = event.json().get("error") or {}
            self.error = str(error.get("message", ""))
        elif event.event == "done":
            self.status = str(event.json().get("status"))

    def _output(self, event: StreamEvent) -> None:
        position = _output_position(event.id)
        if position is not None:
            grew, self.output = position - self.output, position
            if len(event.data) > 1:
                self.text = grew == len(event.data)
        if self.text:
            self.out.write(event.data)
            self.pending_newline = not event.data.endswith("\n")
        else:
            self.out.write(event.data + "\n")
            self.pending_newline = False
        self.out.flush()

    def end(self) -> int:
        """Finish the output's last line; the exit status the prediction's end gives."""
        if self.pending_newline:
            self.out.write("\n")
            self.out.flush()
        if self.status == "succeeded":
            return 0
        self.err.write(f"{self.status}{': ' + self.error if self.error else ''}\n")
        return 1


def print_events(events: Iterable[StreamEvent], *, as_json: bool = False) -> int:
    """Print `events` until the stream's end; the exit status (see Printer.end). With `as_json`
    each event is one JSON line on stdout instead: {"event", "id", "data"}."""
    printer = Printer()
    for event in events:
        if not as_json:
            printer.show(event)
            continue
        line = {"event": event.event, "id": event.id, "data": event.data}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        if event.event == "done":
            printer.status = str(event.json().get("status"))
    if as_json:
        return 0 if printer.status == "succeeded" else 1
    return printer.end()


def _output_position(event_id: str | None) -> int | None:
    head = (event_id or "").partition("-")[0]
    return int(head) if head.isdigit() else None
