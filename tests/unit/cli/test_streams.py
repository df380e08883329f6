"""The CLI prints a stream's text pieces as they are, list items one a line, logs to stderr,
and exits 1 for a prediction that failed."""

from __future__ import annotations

import io

from foretell.cli.streams import Printer
from foretell.client import StreamEvent


def run(*events: StreamEvent) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    printer = Printer(out, err)
    for event in events:
        printer.show(event)
    code = printer.end()
    return out.getvalue(), err.getvalue(), code


def test_a_text_stream_is_written_as_it_comes_and_logs_go_to_stderr() -> None:
    out, err, code = run(
        StreamEvent("status", '{"status": "processing"}', "0-0-2"),
        StreamEvent("output", "Hello", "5-0-2"),
        StreamEvent("logs", "step 1\n", "5-7-2"),
        StreamEvent("output", ",", "6-7-2"),  # one character: as the last one was
        StreamEvent("output", " world", "12-7-2"),
        StreamEvent("done", '{"status": "succeeded"}', "12-7-4"),
    )
    assert (out, err, code) == ("Hello, world\n", "step 1\n", 0)


def test_list_items_and_a_whole_output_are_json_one_a_line() -> None:
    out, _, code = run(
        StreamEvent("output", '{"token": "a"}', "1-0-2"),
        StreamEvent("output", "[1, 2]", "2-0-2"),
        StreamEvent("done", '{"status": "succeeded"}', "2-0-4"),
    )
    assert (out, code) == ('{"token": "a"}\n[1, 2]\n', 0)


def test_a_failed_prediction_says_why_and_exits_1() -> None:
    failed = '{"status": "failed", "error": {"source": "model", "message": "boom"}}'
    out, err, code = run(
        StreamEvent("output", "par", "3-0-2"),
        StreamEvent("error", failed, "3-0-3"),
        StreamEvent("done", '{"status": "failed"}', "3-0-4"),
    )
    assert (out, err, code) == ("par\n", "failed: boom\n", 1)
