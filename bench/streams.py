"""200 concurrent SSE streams on one server: memory, other predictions' latency, streams whole.

    .venv/bin/python bench/streams.py [--quick] [--streams 200] [--tokens 200] [--token-bytes 512]
        [--interval-ms 25] [--slow 50] [--stalled 50] [--stall-s S] [--max-rss-ratio 1.25]
        [--dropping 0] [--phases fast,mixed,stalled] [--setting NAME=VALUE] [--src DIR]

Each stream phase starts its own `foretell serve` (fresh data dir, no auth; the server and its
workers on core 0, this client on core 1 where the machine has both), so its memory is its own,
on a temporary repository holding demo/digits (the shipped ONNX model) and `bench/tokens`, a
python model written here whose `predict` is a generator: `--tokens` strings of `--token-bytes`
characters, one every `--interval-ms` (paced by the clock, so a batch of them advanced in turn
keeps the pace), printing a line every 50 tokens. `bench/tokens` batches --streams predictions
(a 10 s window), so the streams of a phase run at once.

The stream phases, each between two quiet ones (demo/digits alone) on its server:
  fast         --streams predictions (POST /v1/predictions), each read by one reader on
               GET /v1/predictions/{id}/stream at full speed
  mixed        the same, --slow of the readers reading one event a second and --stalled reading
               nothing, until every prediction has ended; then they read the rest at full speed;
               --dropping (default 0) close their connection every 50 events and resume it
               with Last-Event-ID
  stalled      every reader stalled until the predictions end

During each stream phase a separate process (the probe) sends demo/digits predictions one at a
time (`Prefer: wait=10`, one keep-alive connection) from the moment the last prediction of the
phase is processing until it has ended (in a quiet phase, as long as a stream's generation);
its p50 and p99 are compared with the two quiet phases around. Slow and stalled readers get a
4 KB socket receive buffer and a 4 KB asyncio buffer, so what they do not read backs up into the
server, not into this client. The server process's memory is sampled every 50 ms (VmRSS) and
its peak (VmHWM, reset through /proc/PID/clear_refs) read at the phase's end; `tree` adds the
server's workers.

Each reader's events are checked against the prediction's final record: the concatenated `output`
events equal its `output`, the `logs` events its `logs`, ids grow and say the position reached
(STREAM_API.md), `done` ends it. A reader cut by the server (an `error` event without id, or the
connection closed before `done`) reconnects with `Last-Event-ID` and goes on; cuts are counted.

Exit code 1 if a reader's events were incomplete or out of order, a prediction did not succeed,
or the server's peak RSS with stalled readers exceeded --max-rss-ratio times that with fast ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness.models import EXAMPLES
from harness.noise import TICKS, _tree_ticks, others_share, snapshot
from harness.procs import CLIENT_CORE, HOST, can_pin, free_port, rss_bytes, spawned
from harness.sse import Opened, open_stream

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench/tokens"
# sklearn's first 8x8 digit image (a zero), as harness.models.digits_model sends it; written
# out so that the probe process starts without importing scikit-learn.
DIGITS_ROW = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4]
DIGITS_ROW += [12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5]
DIGITS_ROW += [10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
DIGITS_BODY = {"model": "demo/digits", "input": {"features": [[float(x) for x in DIGITS_ROW]]}}
SMALL_BUFFER = 4096  # slow and stalled readers: socket receive buffer and asyncio's buffer
DROP_EVERY = 50  # events a dropping reader takes before it closes and resumes
MANIFEST = """\
runtime: python
predictor: predict.py:Tokens
description: 'bench/streams.py: a generator predict yielding tokens at a steady pace.'
batching:
  max_batch_size: {batch}
  max_delay_ms: 10000
  max_queue_size: 1024
timeouts:
  predict_s: 900
"""
PREDICTOR = '''\
"""Tokens at a steady pace, for bench/streams.py."""

import time
from collections.abc import Iterator

from foretell.sdk import Input, Predictor


def token(i: int, size: int) -> str:
    head, tail = f"{i:06d}:", "\\n" if i % 10 == 9 else " "
    return head + "x" * (size - len(head) - 1) + tail


class Tokens(Predictor):
    def predict(
        self,
        tokens: int = Input(default=200, ge=1, le=100000),
        token_bytes: int = Input(default=64, ge=8, le=65536),
        interval_ms: float = Input(default=20.0, ge=0, le=10000),
    ) -> Iterator[str]:
        start = time.monotonic()
        for i in range(tokens):
            # Paced by the clock, not by sleeping a fixed time: advanced in turn with others,
            # each finds its time already come and the batch keeps one token per interval.
            delay = start + i * interval_ms / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if i % 50 == 0:
                print(f"token {i} of {tokens}", flush=True)
            yield token(i, token_bytes)
'''


def expected_output(tokens: int, size: int) -> str:
    """What `bench/tokens` yields, concatenated (the same `token` as PREDICTOR's)."""
    parts = []
    for i in range(tokens):
        head, tail = f"{i:06d}:", "\n" if i % 10 == 9 else " "
        parts.append(head + "x" * (size - len(head) - 1) + tail)
    return "".join(parts)


# --- the probe: demo/digits latency, in its own process so the readers' loop does not delay it


def probe(base_url: str) -> None:
    """Sequential digits predictions from the first line of stdin (the request's JSON body)
    until stdin closes; prints JSON results. Started ahead, so its start-up is not timed."""
    line = sys.stdin.readline()
    if not line:
        return  # stopped before it was told to go
    body = json.loads(line)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    latencies, failed = [], 0
    with httpx.Client(base_url=base_url, headers={"Prefer": "wait=10"}, timeout=60) as http:
        while not stop.is_set():
            started = time.perf_counter()
            response = http.post("/v1/predictions", json=body)
            elapsed = time.perf_counter() - started
            if response.status_code == 201 and response.json().get("status") == "succeeded":
                latencies.append(elapsed * 1000)
            else:
                failed += 1
    print(json.dumps({"latencies_ms": latencies, "failed": failed}))


class Probe:
    """The probe process: started ahead, told to go, stopped; its latencies back."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._proc: asyncio.subprocess.Process | None = None
        self._went = 0.0

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *[sys.executable, __file__, "--probe", self.base_url],
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )

    def go(self) -> None:
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(DIGITS_BODY).encode() + b"\n")
        self._went = time.monotonic()

    async def stop(self, busy: Busy) -> ProbeResult:
        """Its latencies since `go` (none if it was never told to go)."""
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        window = time.monotonic() - self._went if self._went else 0.0
        out, _ = await self._proc.communicate()
        others = busy.share()  # once the probe is reaped: its CPU counts as this client's
        result = json.loads(out) if out else {"latencies_ms": [], "failed": 0}
        return ProbeResult(result["latencies_ms"], result["failed"], window, others)


# --- memory


def memory_kb(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def send_queues(port: int) -> int:
    """Bytes the kernel holds unsent or unacknowledged on the sockets of the server's `port`
    (tx_queue in /proc/net/tcp): what a reader that does not read costs outside the server's
    RSS, up to the socket's send buffer (autotuned up to net.ipv4.tcp_wmem's maximum)."""
    total, suffix = 0, f":{port:04X}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(suffix):
                total += int(fields[4].split(":")[0], 16)
    return total


class Memory:
    """The server process's RSS sampled while a phase runs, and its peak since the phase began;
    the peak of its sockets' kernel send queues."""

    def __init__(self, pid: int, port: int) -> None:
        self.pid = pid
        self.port = port
        self.peak_send_queues = 0
        self.peak_rss_kb = 0
        self.peak_tree_bytes = 0
        self.start_rss_kb = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.start_rss_kb = memory_kb(self.pid, "VmRSS")
        with contextlib.suppress(OSError):  # "5" resets VmHWM to the current RSS (Linux 4.0+)
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.peak_rss_kb = memory_kb(self.pid, "VmRSS")
        self.peak_tree_bytes = rss_bytes(self.pid)
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        tick = 0
        while True:
            self.peak_rss_kb = max(self.peak_rss_kb, memory_kb(self.pid, "VmRSS"))
            if tick % 5 == 0:
                self.peak_send_queues = max(self.peak_send_queues, send_queues(self.port))
            if tick % 10 == 0:
                self.peak_tree_bytes = max(self.peak_tree_bytes, rss_bytes(self.pid))
            tick += 1
            await asyncio.sleep(0.05)

    async def stop(self) -> int:
        """The phase's peak RSS in kB: VmHWM where it was reset, else the sampled maximum."""
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return max(self.peak_rss_kb, memory_kb(self.pid, "VmHWM"))


# --- readers


@dataclass
class PhaseState:
    """What the readers of a phase share: how many are connected, and whether it has ended."""

    readers: int
    connected: int = 0
    all_connected: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def one_connected(self) -> None:
        self.connected += 1
        if self.connected >= self.readers:
            self.all_connected.set()


@dataclass
class Reader:
    """One reader of one prediction's stream: what it received and what went wrong."""

    prediction_id: str
    kind: str  # fast | slow | stalled
    output: list[str] = field(default_factory=list)
    logs: str = ""
    # (output position the id said, characters so far, items so far) after each output event
    output_marks: list[tuple[int, int, int]] = field(default_factory=list)
    events: int = 0
    cuts: int = 0  # `error` events without an id: the server cut this reader
    drops: int = 0  # connections closed before `done`, without a cut event
    resumes: int = 0  # a dropping reader's own disconnections, each resumed with Last-Event-ID
    done: str | None = None
    failed: str | None = None  # an `error` event with an id: the prediction failed
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 3:
            self.problems.append(text)


def parse_position(text: str) -> tuple[int, int, int] | None:
    parts = text.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


async def read(port: int, r: Reader, phase: PhaseState) -> None:
    """Read `r`'s stream to `done`, at its kind's pace, resuming with Last-Event-ID when cut."""
    last_id: str | None = None
    position = (0, 0, 0)
    first = True
    small = r.kind in ("slow", "stalled")
    while r.done is None and r.cuts + r.drops <= 20:
        try:
            stream = await open_stream(
                HOST,
                port,
                f"/v1/predictions/{r.prediction_id}/stream",
                last_event_id=last_id,
                rcvbuf=SMALL_BUFFER if small else None,
                limit=SMALL_BUFFER if small else 65536,
            )
        except (OSError, ValueError) as exc:
            r.problem(f"connect: {exc!r}")
            r.drops += 1
            await asyncio.sleep(0.1)
            continue
        if first:
            first = False
            phase.one_connected()
        try:
            if stream.status != 200:
                body = await stream.reader.read(2000)
                r.problem(f"GET stream answered {stream.status}: {body[-300:]!r}")
                return
            if r.kind == "stalled":
                await phase.ended.wait()
            last_id, position = await _events(stream, r, phase, last_id, position)
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            r.problem(f"read: {exc!r}")
            r.drops += 1
        finally:
            stream.close()


async def _events(
    stream: Opened, r: Reader, phase: PhaseState, last_id: str | None, pos: tuple[int, int, int]
) -> tuple[str | None, tuple[int, int, int]]:
    chars = sum(map(len, r.output))
    async for event in stream.events():
        if r.kind == "slow" and not phase.ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(phase.ended.wait(), 1.0)
        r.events += 1
        if event.id is None:
            if event.event == "error":
                r.cuts += 1
            else:
                r.problem(f"{event.event} event without id")
            return last_id, pos
        new = parse_position(event.id)
        if new is None or new == pos or any(a < b for a, b in zip(new, pos, strict=True)):
            r.problem(f"id {event.id!r} after {last_id!r}")
        last_id, pos = event.id, new or pos
        if event.event == "output":
            r.output.append(event.data)
            chars += len(event.data)
            r.output_marks.append((pos[0], chars, len(r.output)))
        elif event.event == "logs":
            r.logs += event.data
            if pos[1] != len(r.logs):
                r.problem(f"logs id {event.id} but {len(r.logs)} characters of logs received")
        elif event.event == "error":
            r.failed = event.data
        elif event.event == "done":
            r.done = event.data
            return last_id, pos
        elif event.event != "status":
            r.problem(f"unknown event {event.event!r}")
        if r.kind == "dropping" and r.events % DROP_EVERY == 0:
            r.resumes += 1  # leave mid-stream, as a client whose connection dropped
            return last_id, pos
    r.drops += 1  # closed before done, without a cut event
    return last_id, pos


def check(r: Reader, record: dict[str, Any], expected: str) -> None:
    """Add to `r.problems` where its events differ from the prediction's final record, or the
    record from what the model yielded."""
    if record.get("output") != expected:
        r.problem(f"the record's output is not what the model yielded ({len(expected)} chars)")
    if record.get("status") != "succeeded":
        r.problem(f"prediction {record.get('status')}: {record.get('error')}")
    if r.done is None:
        r.problem("no done event")
    elif json.loads(r.done).get("status") != record.get("status"):
        r.problem(f"done {r.done} but the record says {record.get('status')}")
    output = record.get("output")
    if isinstance(output, str):
        got: Any = "".join(r.output)
        marks_ok = all(said == chars for said, chars, _ in r.output_marks)
    elif isinstance(output, list):
        got = [json.loads(part) for part in r.output]
        marks_ok = all(said == items for said, _, items in r.output_marks)
    else:
        got, marks_ok = [json.loads(part) for part in r.output], True
        got = got[0] if len(got) == 1 else got
    if got != output:
        shown = "".join(r.output) if isinstance(output, str) else got
        r.problem(
            f"output events ({len(r.output)}, {len(str(shown))} chars) != the record's output "
            f"({len(str(output))} chars); first difference at {_first_difference(shown, output)}"
        )
    if not marks_ok:
        r.problem("an output event's id does not say the output position reached")
    if r.logs != (record.get("logs") or ""):
        r.problem(f"logs events {r.logs!r:.80} != record logs {record.get('logs')!r:.80}")


def _first_difference(a: Any, b: Any) -> int:
    a, b = str(a), str(b)
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


# --- phases


@dataclass(frozen=True)
class ProbeResult:
    """demo/digits latencies over one window, and what other processes took of each core."""

    latencies_ms: list[float]
    failed: int
    window_s: float
    others: tuple[float, float]  # share of core 0 (server) and core 1 (client) others used


@dataclass
class PhaseResult:
    name: str
    kinds: dict[str, int]
    probe: ProbeResult
    start_rss_kb: int
    peak_rss_kb: int
    peak_tree_bytes: int
    peak_send_queues: int
    server_cpu_s: float
    client_cpu_s: float
    wall_s: float
    readers: list[Reader]
    overlap: int = 0  # most predictions of the phase processing at the same moment


async def record(http: httpx.AsyncClient, prediction_id: str) -> dict[str, Any]:
    response = await http.get(f"/v1/predictions/{prediction_id}")
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


async def wait_status(http: httpx.AsyncClient, prediction_id: str, statuses: set[str]) -> str:
    # Polled: the record is what says it, and another API process may be the one running it.
    while (status := (await record(http, prediction_id))["status"]) not in statuses:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    return str(status)


TERMINAL = {"succeeded", "failed", "canceled"}


def max_overlap(records: list[dict[str, Any]]) -> int:
    edges: list[tuple[datetime, int]] = []
    for rec in records:
        if rec.get("started_at") and rec.get("completed_at"):
            edges.append((datetime.fromisoformat(rec["started_at"]), 1))
            edges.append((datetime.fromisoformat(rec["completed_at"]), -1))
    running = best = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        running += step
        best = max(best, running)
    return best


async def gather_limited(n: int, coros: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(n)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


class Busy:
    """What other processes took of each core between `start` and `share`: the machine's noise,
    from /proc/stat less the server's tree (core 0) and this client with its probes (core 1)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start = snapshot(pid)
        self._own = _own_cpu()

    def share(self) -> tuple[float, float]:
        end = snapshot(self.pid)
        server, _ = others_share(self._start, end)
        busy, total = (end.client[i] - self._start.client[i] for i in (0, 1))
        own = (_own_cpu() - self._own) * TICKS
        return server, max(0.0, (busy - own) / total) if total > 0 else 0.0


class Meter:
    """A phase's memory, CPU and wall time, from its start."""

    def __init__(self, pid: int, port: int) -> None:
        self.pid = pid
        self.memory = Memory(pid, port)
        self.memory.start()
        self._cpu = _tree_ticks(pid)
        self._own = _own_cpu()
        self._t0 = time.monotonic()

    async def result(
        self, name: str, kinds: dict[str, int], probe: ProbeResult, readers: list[Reader]
    ) -> PhaseResult:
        peak = await self.memory.stop()
        return PhaseResult(
            name,
            kinds,
            probe,
            self.memory.start_rss_kb,
            peak,
            self.memory.peak_tree_bytes,
            self.memory.peak_send_queues,
            (_tree_ticks(self.pid) - self._cpu) / TICKS,
            _own_cpu() - self._own,
            time.monotonic() - self._t0,
            readers,
        )


async def stream_phase(
    name: str, kinds: list[str], port: int, pid: int, args: argparse.Namespace
) -> PhaseResult:
    base_url = f"http://{HOST}:{port}"
    prober = Probe(base_url)
    await prober.start()
    meter = Meter(pid, port)
    body = {
        "model": MODEL,
        "input": {
            "tokens": args.tokens,
            "token_bytes": args.token_bytes,
            "interval_ms": args.interval_ms,
        },
    }
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as http:

        async def create() -> str:
            response = await http.post("/v1/predictions", json=body)
            if response.status_code != 201:
                raise SystemExit(
                    f"POST /v1/predictions answered {response.status_code}: {response.text}"
                )
            return str(response.json()["id"])

        ids = await gather_limited(16, [create() for _ in kinds])
        phase = PhaseState(len(ids))
        readers = [Reader(i, kind) for i, kind in zip(ids, kinds, strict=True)]
        tasks = [asyncio.create_task(read(port, r, phase)) for r in readers]
        await asyncio.wait_for(phase.all_connected.wait(), 120)
        limit_s = 10 * args.tokens * args.interval_ms / 1000 + 300
        status = await asyncio.wait_for(
            wait_status(http, ids[-1], {"processing"} | TERMINAL), limit_s
        )
        # The probe runs while every prediction of the phase streams: from the last one's
        # start (they run as one batch) to its end.
        busy = Busy(pid)
        if status == "processing":
            prober.go()
        await asyncio.wait_for(wait_status(http, ids[-1], TERMINAL), limit_s)
        probe = await prober.stop(busy)
        for prediction_id in ids:
            await asyncio.wait_for(wait_status(http, prediction_id, TERMINAL), limit_s)
        phase.ended.set()
        await asyncio.wait_for(asyncio.gather(*tasks), limit_s)
        result = await meter.result(name, _counts(kinds), probe, readers)
        records = await gather_limited(16, [record(http, i) for i in ids])
    expected = expected_output(args.tokens, args.token_bytes)
    for r, rec in zip(readers, records, strict=True):
        check(r, rec, expected)
    result.overlap = max_overlap(records)
    return result


def _counts(kinds: list[str]) -> dict[str, int]:
    return {k: kinds.count(k) for k in ("fast", "slow", "stalled", "dropping") if k in kinds}


async def quiet_phase(name: str, port: int, pid: int, seconds: float) -> PhaseResult:
    prober = Probe(f"http://{HOST}:{port}")
    await prober.start()
    meter = Meter(pid, port)
    busy = Busy(pid)
    prober.go()
    await asyncio.sleep(seconds)
    return await meter.result(name, {}, await prober.stop(busy), [])


def _own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the probes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# --- the report


def pct(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _pooled(results: list[PhaseResult], i: int) -> list[float]:
    """The quiet phases' latencies on either side of phase `i`: its baseline."""
    around = [results[j] for j in (i - 1, i + 1) if 0 <= j < len(results)]
    return [x for p in around if not p.readers for x in p.probe.latencies_ms]


def report(results: list[PhaseResult], args: argparse.Namespace) -> bool:
    ok = True
    print(
        "\n| phase | readers | ran at once | digits calls | p50 ms | p99 ms | p50 x quiet |"
        " p99 x quiet | window s | others on core 0 / 1 |"
    )
    print("| --- | --- |" + " ---: |" * 8)
    for i, p in enumerate(results):
        lat = p.probe.latencies_ms
        p50, p99 = pct(lat, 50), pct(lat, 99)
        ratios = "- | -"
        if p.readers:
            quiet = _pooled(results, i)
            ratios = f"{p50 / pct(quiet, 50):.2f}x | {p99 / pct(quiet, 99):.2f}x"
        failed = f" ({p.probe.failed} failed)" if p.probe.failed else ""
        ok = ok and not p.probe.failed
        readers = ", ".join(f"{v} {k}" for k, v in p.kinds.items()) or "none"
        o0, o1 = p.probe.others
        print(
            f"| {p.name} | {readers} | {p.overlap or '-'} | {len(lat)}{failed} | {p50:.2f} |"
            f" {p99:.2f} | {ratios} | {p.probe.window_s:.1f} | {o0:.0%} / {o1:.0%} |"
        )
    print(
        "\n| phase | RSS before MB | peak MB | peak - before MB | RSS after MB | tree peak MB |"
        " kernel send queues peak MB |"
        " server CPU s | per token us | client CPU s | wall s | events | cuts | drops | resumes |"
        " readers ok |"
    )
    print("| --- |" + " ---: |" * 15)
    tokens = args.streams * args.tokens
    streamed = [(i, p) for i, p in enumerate(results) if p.readers]
    for i, p in streamed:
        bad = [r for r in p.readers if r.problems]
        ok = ok and not bad
        before, after = results[i - 1].start_rss_kb, results[i + 1].start_rss_kb
        print(
            f"| {p.name} | {before / 1024:.0f} | {p.peak_rss_kb / 1024:.0f} |"
            f" {(p.peak_rss_kb - before) / 1024:+.0f} | {after / 1024:.0f} |"
            f" {p.peak_tree_bytes / 1e6:.0f} | {p.peak_send_queues / 1e6:.1f} |"
            f" {p.server_cpu_s:.1f} |"
            f" {p.server_cpu_s / tokens * 1e6:.0f} | {p.client_cpu_s:.1f} | {p.wall_s:.0f} |"
            f" {sum(r.events for r in p.readers)} | {sum(r.cuts for r in p.readers)} |"
            f" {sum(r.drops for r in p.readers)} | {sum(r.resumes for r in p.readers)} |"
            f" {len(p.readers) - len(bad)}/{len(p.readers)} |"
        )
    for _, p in streamed:
        for r in [r for r in p.readers if r.problems][:5]:
            print(f"  {p.name}: {r.kind} reader of {r.prediction_id}: {'; '.join(r.problems)}")
    stream_kb = args.tokens * args.token_bytes / 1000
    print(
        f"\neach stream: {args.tokens} tokens, {stream_kb:.0f} KB of output"
        f" ({args.streams} streams: {stream_kb * args.streams / 1000:.0f} MB in the records);"
        " per token us: the server's CPU (API process and workers) over the tokens streamed"
    )
    by_name = {p.name: (i, p) for i, p in streamed}
    if "fast" in by_name and "stalled" in by_name:
        (i_fast, fast), (i_stalled, stalled) = by_name["fast"], by_name["stalled"]
        ratio = stalled.peak_rss_kb / fast.peak_rss_kb
        grown = {
            p.name: (p.peak_rss_kb - results[i - 1].start_rss_kb) / args.streams
            for i, p in ((i_fast, fast), (i_stalled, stalled))
        }
        verdict = "✔" if ratio <= args.max_rss_ratio else "✘"
        print(
            f"peak RSS, {args.streams} stalled / {args.streams} fast readers: {ratio:.2f}x"
            f" {verdict} (≤ {args.max_rss_ratio}x); peak - before a reader: stalled"
            f" {grown['stalled']:+.0f} KB, fast {grown['fast']:+.0f} KB, a stream's output"
            f" {stream_kb:.0f} KB"
        )
        ok = ok and ratio <= args.max_rss_ratio
    return ok


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: nproc={os.cpu_count()}, {platform.processor() or platform.machine()}, "
        f"Linux {platform.release()}, load average at start {load};"
        f" python {platform.python_version()}"
    )


async def run_phase(
    name: str, kinds: list[str], port: int, pid: int, args: argparse.Namespace
) -> list[PhaseResult]:
    """On a fresh server: digits alone, then with the streams, then alone again. A quiet phase
    on either side, because on a shared machine the load moves within a minute."""
    await warm_up(f"http://{HOST}:{port}", port)
    quiet_s = max(3.0, args.tokens * args.interval_ms / 1000)
    before = await quiet_phase(f"{name}: before", port, pid, quiet_s)
    print(f"{name}: {len(kinds)} readers ...", flush=True)
    during = await stream_phase(name, kinds, port, pid, args)
    return [before, during, await quiet_phase(f"{name}: after", port, pid, quiet_s)]


async def warm_up(base_url: str, port: int) -> None:
    """One digits prediction and one short stream read whole: both models answer, the route is
    there; otherwise say what is missing and stop."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        for _ in range(20):
            response = await http.post(
                "/v1/predictions", json=DIGITS_BODY, headers={"Prefer": "wait=10"}
            )
            if response.status_code != 201 or response.json().get("status") != "succeeded":
                raise SystemExit(f"demo/digits: {response.status_code} {response.text[:500]}")
        tokens = {"model": MODEL, "input": {"tokens": 20, "token_bytes": 64, "interval_ms": 1}}
        response = await http.post("/v1/predictions", json=tokens)
        if response.status_code != 201:
            raise SystemExit(f"{MODEL}: POST answered {response.status_code} {response.text[:500]}")
        r = Reader(response.json()["id"], "fast")
        await asyncio.wait_for(read(port, r, PhaseState(1)), 120)
        check(r, await record(http, r.prediction_id), expected_output(20, 64))
        if r.problems:
            raise SystemExit(f"{MODEL}: a first stream went wrong: {'; '.join(r.problems)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter streams (80 tokens)")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--token-bytes", type=int, default=512)
    parser.add_argument("--interval-ms", type=float, default=25.0)
    parser.add_argument("--slow", type=int, default=50, help="slow readers in the mixed phase")
    parser.add_argument("--stalled", type=int, default=50, help="stalled ones in the mixed phase")
    parser.add_argument(
        "--dropping",
        type=int,
        default=0,
        help=f"readers in the mixed phase that close every {DROP_EVERY} events and resume",
    )
    parser.add_argument("--stall-s", type=float, help="the server's stream_stall_s")
    parser.add_argument("--max-rss-ratio", type=float, default=1.25)
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a server setting (FORETELL_NAME), e.g. progress_interval_s=5; repeatable",
    )
    parser.add_argument(
        "--phases",
        type=lambda text: text.split(","),
        default=["fast", "mixed", "stalled"],
        help="which stream phases, comma-separated (default fast,mixed,stalled)",
    )
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the foretell to serve")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe)
        return
    if args.quick:
        args.tokens = min(args.tokens, 80)
    if args.slow + args.stalled + args.dropping > args.streams:
        parser.error("--slow + --stalled + --dropping must be at most --streams")
    print(machine())
    print("command: " + " ".join([".venv/bin/python", "bench/streams.py", *sys.argv[1:]]))
    for name in [k for k in os.environ if k.startswith("FORETELL_")]:
        del os.environ[name]  # the server reads only what this run sets
    if can_pin():
        os.sched_setaffinity(0, {CLIENT_CORE})
    started = time.monotonic()
    fast = args.streams - args.slow - args.stalled - args.dropping
    plan = [
        ("fast", ["fast"] * args.streams),
        (
            "mixed",
            ["fast"] * fast
            + ["slow"] * args.slow
            + ["stalled"] * args.stalled
            + ["dropping"] * args.dropping,
        ),
        ("stalled", ["stalled"] * args.streams),
    ]
    plan = [(name, kinds) for name, kinds in plan if name in args.phases]
    results: list[PhaseResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        repository = repository_for(Path(tmp), args.streams)
        for name, kinds in plan:
            # Each stream phase on a fresh server: its memory is its own, not what an earlier
            # phase left in the allocator's arenas.
            with serving(args, repository, Path(tmp) / name) as (port, pid):
                results += asyncio.run(run_phase(name, kinds, port, pid, args))
    ok = report(results, args)
    print(f"total time: {time.monotonic() - started:.0f} s")
    sys.exit(0 if ok else 1)


def repository_for(tmp: Path, streams: int) -> Path:
    """demo/digits and bench/tokens, in a repository of their own."""
    repository = tmp / "models"
    shutil.copytree(EXAMPLES / "demo" / "digits", repository / "demo" / "digits")
    folder = repository / MODEL / "1"
    folder.mkdir(parents=True)
    # A phase's predictions run as one batch: it starts as soon as the last is created, or
    # after the window when creating them takes longer (the first waits for the others).
    (folder / "foretell.yaml").write_text(MANIFEST.format(batch=streams))
    (folder / "predict.py").write_text(PREDICTOR)
    return repository


@contextlib.contextmanager
def serving(args: argparse.Namespace, repository: Path, data: Path) -> Iterator[tuple[int, int]]:
    """A ready `foretell serve` of `repository`: its port and pid; its log shown if we fail."""
    port = free_port()
    env = {"PYTHONPATH": str(args.src)}
    if args.stall_s is not None:
        env["FORETELL_STREAM_STALL_S"] = str(args.stall_s)
    for setting in args.setting:
        name, _, value = setting.partition("=")
        env[f"FORETELL_{name.upper()}"] = value
    argv = [sys.executable, "-m", "foretell", "serve", str(repository), "--port", str(port)]
    argv += ["--data-dir", str(data), "--no-auth"]
    data.mkdir()
    with spawned("foretell", argv, port, data / "server.log", env=env) as server:
        try:
            wait_ready(server.base_url, server.proc)
            yield port, server.proc.pid
        except BaseException:
            print("server log, last lines:\n" + server.log_tail(30), file=sys.stderr)
            raise


def wait_ready(base_url: str, proc: Any, limit_s: float = 180) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/health/ready", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"the server was not ready after {limit_s:.0f} s")


if __name__ == "__main__":
    main()
