"""The access log's cost on the hot path: server CPU per native recorded prediction, with the
access log on and off (and, with --base SRC, the code before it), side by side.

`foretell serve --no-auth` on a repository of demo/digits alone (pinned to core 0, its output
to a file as a real deployment's would go), driven by `wrk -t1 -c64` (core 1) POSTing
compare.py's digits row with `Prefer: wait=10`; the server's process tree's utime + stime from
/proc over each run, per answered request. Rounds alternate between the configurations so that
drift in the machine hits each alike; the medians are printed.

    .venv/bin/python bench/access_log.py [--base /tmp/base/src] [--rounds 3 --seconds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import procs, runner, wrk
from harness.models import digits_model

ROOT = Path(__file__).resolve().parent.parent
EXE = ROOT / ".venv" / "bin" / "foretell"
CONNECTIONS = 64


def _config(name: str, tmp: Path, base: str | None) -> tuple[list[str], dict[str, str]]:
    """The serve flags and environment of configuration `name`."""
    if name == "off":
        return ["--no-access-log"], {}
    if name == "base":
        return [], {"PYTHONPATH": base or ""}
    return [], {}


def _round(name: str, tmp: Path, repo: Path, base: str | None, seconds: float) -> float:
    port = procs.free_port()
    flags, env = _config(name, tmp, base)
    data = tmp / f"data-{name}-{port}"
    argv = [str(EXE), "serve", str(repo), "--no-auth", "--port", str(port), "--data-dir", str(data)]
    model = digits_model()
    body = json.dumps({"model": model.ref, "input": {model.input_name: [model.row]}}).encode()
    script = tmp / "post.lua"
    script.write_text(wrk.lua_script(body, {"Prefer": "wait=10"}, '"status":"succeeded"'))
    with procs.spawned(name, [*argv, *flags], port, tmp / f"{name}-{port}.log", env=env) as srv:
        url = f"{srv.base_url}/v1/predictions"
        deadline = time.monotonic() + 120
        while True:  # ready once the model answers
            try:
                if httpx.get(f"{srv.base_url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"{name}: not ready: {srv.log_tail()}")
            time.sleep(0.2)
        wrk.run(url, script, 16, 2.0)  # warm-up
        result = runner.measured(srv, url, script, CONNECTIONS, seconds)
        if result.errors:
            sys.exit(f"{name}: {result.error_text()}")
        noisy = " (noisy)" if result.noisy else ""
        print(
            f"{name:5} {result.cpu_us_per_request:7.1f} us/req  {result.rps:8.0f} req/s{noisy}",
            flush=True,
        )
        return result.cpu_us_per_request


def _micro(n: int = 200_000) -> None:
    """CPU a request of what the fast lane adds, alone (in this process): the request id
    (read, made, set, echoed) and the access line (made, rendered, written to a file)."""
    import logging

    from foretell.api import access
    from foretell.api.request_id import HEADER, begin

    headers = [(b"host", b"x"), (b"content-type", b"application/json"), (b"prefer", b"wait=10")]
    headers += [(b"content-length", b"700"), (b"authorization", b"Bearer ft_x")]
    scope = {
        "method": "POST",
        "path": "/v1/predictions",
        "client": ("127.0.0.1", 5),
        "headers": headers,
    }
    raw: list[tuple[bytes, bytes]] = []

    def ids() -> None:
        for _ in range(n):
            info = begin(access.sent_id(headers))
            raw.append((HEADER, info.raw))
            raw.clear()

    def lines() -> None:
        info = begin(None)
        for _ in range(n):
            access.write(scope, 201, 0.0, info)

    with tempfile.TemporaryDirectory() as scratch:
        handler = logging.FileHandler(Path(scratch) / "access.log")
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.log.addHandler(handler)
        access.log.setLevel(logging.INFO)
        access.log.propagate = False
        for name, run in (("request id", ids), ("access line", lines)):
            spent = []
            for _ in range(3):
                started = time.process_time()
                run()
                spent.append((time.process_time() - started) / n * 1e6)
            print(f"micro {name:11} {min(spent):5.2f} us/req (best of 3 x {n})")
        handler.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="src folder of the code before (e.g. /tmp/base/src)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--micro", action="store_true", help="only the in-process parts")
    args = parser.parse_args()
    _micro()
    if args.micro:
        return
    names = ["on", "off", *(["base"] if args.base else [])]
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        repo = tmp / "repo" / "demo"
        repo.mkdir(parents=True)
        (repo / "digits").symlink_to(ROOT / "examples" / "models" / "demo" / "digits")
        found: dict[str, list[float]] = {n: [] for n in names}
        for i in range(args.rounds):
            order = names if i % 2 == 0 else names[::-1]
            for name in order:
                found[name].append(_round(name, tmp, repo.parent, args.base, args.seconds))
    for name, values in found.items():
        print(f"median {name:5} {statistics.median(values):7.1f} us/req  ({values})")


if __name__ == "__main__":
    main()
