"""Drive one URL with wrk (pinned to the client core) and parse what it prints."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.noise import NOISY
from harness.procs import CLIENT_CORE, pinned

# A request slower than this counts as a wrk timeout error; foretell's native route itself
# waits up to 10 s (Prefer: wait=10), so anything near that is a failure, not a slow success.
WRK_TIMEOUT_S = 10

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_BAD_BODY = re.compile(r"^BAD_BODIES (\d+)$", re.MULTILINE)
_STATUS = re.compile(r"^STATUS (\d+) (\d+)$", re.MULTILINE)

# Only targets with an expected body text get response(): it makes wrk hand every answer to
# Lua, which cost ~30% of wrk's own ceiling on the Starlette baseline (31k -> 21k req/s at 64
# connections), too much there; at the few thousand req/s of real servers wrk stays far from
# its limit. In exchange it counts 2xx answers that lack the text (foretell's native route
# answers 201 even for a failed prediction) and which non-2xx statuses came back.
_LUA_BASE = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
"""
_LUA_CHECK = """\
local expect = [==[{expect}]==]
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; codes = {{}} end
function response(status, headers, body)
  if status < 200 or status >= 300 then
    codes[status] = (codes[status] or 0) + 1
  elseif not string.find(body, expect, 1, true) then
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local total, all = 0, {{}}
  for _, t in ipairs(threads) do
    total = total + t:get("bad")
    for status, n in pairs(t:get("codes")) do all[status] = (all[status] or 0) + n end
  end
  io.write(string.format("BAD_BODIES %d\\n", total))
  for status, n in pairs(all) do io.write(string.format("STATUS %d %d\\n", status, n)) end
end
"""


def wrk_path() -> str | None:
    """Where wrk is installed, if it is."""
    return shutil.which("wrk")


def lua_script(body: bytes, headers: Mapping[str, str], expect: str | None) -> str:
    """A wrk script that POSTs `body` with `headers`, counting 2xx bodies that lack `expect`."""
    all_headers = {"Content-Type": "application/json", **headers}
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in all_headers.items())
    script = _LUA_BASE.format(body=body.decode(), headers=lines)
    if expect is not None:
        script += _LUA_CHECK.format(expect=expect)
    return script


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles and every kind of error it counted."""

    connections: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int = 0
    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0
    bad_bodies: int = 0
    statuses: tuple[tuple[int, int], ...] = ()  # (non-2xx status, count), from our script
    # Share of the server's core and of wrk's core that other processes used meanwhile (noise).
    others_server: float = 0.0
    others_client: float = 0.0
    # CPU seconds the server's process tree used during the run (its threads and children).
    server_cpu_s: float = math.nan

    @property
    def cpu_us_per_request(self) -> float:
        """The server's CPU per answered request, in microseconds (nan: not measured)."""
        if not self.requests or math.isnan(self.server_cpu_s):
            return math.nan
        return self.server_cpu_s / self.requests * 1e6

    @property
    def noisy(self) -> bool:
        return max(self.others_server, self.others_client) > NOISY

    @property
    def errors(self) -> int:
        return self.non_2xx + self.connect + self.read + self.write + self.timeout + self.bad_bodies

    def error_text(self) -> str:
        """Empty when clean; else each non-zero error kind, e.g. `non-2xx 12, timeout 3`."""
        kinds = {
            "non-2xx": self.non_2xx,
            "connect": self.connect,
            "read": self.read,
            "write": self.write,
            "timeout": self.timeout,
            "bad body": self.bad_bodies,
        }
        text = ", ".join(f"{name} {n}" for name, n in kinds.items() if n)
        if self.statuses:
            text += " [" + ", ".join(f"HTTP {code}: {n}" for code, n in self.statuses) + "]"
        return text


def _ms(match: re.Match[str]) -> float:
    return float(match.group(2)) * _UNIT_MS[match.group(3)]


def parse(output: str, connections: int) -> WrkResult:
    """A WrkResult from wrk's --latency output (and the BAD_BODIES line our script prints)."""
    percentiles = {m.group(1): _ms(m) for m in _PERCENTILE.finditer(output)}
    rps, total = _RPS.search(output), _TOTAL.search(output)
    if rps is None or total is None:
        raise ValueError(f"wrk printed no summary:\n{output[-2000:]}")
    non_2xx, socket, bad = _NON_2XX.search(output), _SOCKET.search(output), _BAD_BODY.search(output)
    connect, read, write, timeout = (int(x) for x in socket.groups()) if socket else (0, 0, 0, 0)
    return WrkResult(
        connections=connections,
        requests=int(total.group(1)),
        rps=float(rps.group(1)),
        p50_ms=percentiles.get("50", math.nan),
        p99_ms=percentiles.get("99", math.nan),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        connect=connect,
        read=read,
        write=write,
        timeout=timeout,
        bad_bodies=int(bad.group(1)) if bad else 0,
        statuses=tuple(sorted((int(c), int(n)) for c, n in _STATUS.findall(output))),
    )


def run(url: str, script: Path, connections: int, duration_s: float) -> WrkResult:
    """`wrk -t1 -cN -dD --latency` against `url`, pinned to the client core."""
    argv = [
        wrk_path() or "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration_s:g}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(
        pinned(argv, CLIENT_CORE),
        capture_output=True,
        text=True,
        timeout=duration_s + WRK_TIMEOUT_S + 30,  # wrk waits out in-flight requests at the end
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return parse(done.stdout, connections)
