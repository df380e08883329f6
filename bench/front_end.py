"""The HTTP front end for foretell's hot routes, measured: which server answers them cheapest.

Each front serves the same app (foretell on a repository of demo/digits alone, auth on), one at a
time, pinned to core 0 with wrk on core 1, in rounds that alternate the fronts (this machine is
shared: a disturbance then hits every front, not one):

  uvicorn ASGI    uvicorn + httptools (api.connection's limits), the ASGI stack: body limit,
                  decoding, the hot paths' ASGI dispatcher (api.hotpath), Starlette responses
  uvicorn lane    the same protocol handing hot routes to api.lane: no ASGI, one write per answer
                  (what `foretell serve` runs)
  granian ASGI    granian 2.8 (Rust HTTP, `pip install granian`) running the same ASGI stack

Per route (native recorded, GPUX, OIP infer) and connections (1, 64): req/s, p50 and the
server's CPU per request (utime + stime of its process tree over the run, from /proc). Each is
kept from the round in which other processes took the least of core 0 (the server's): on a
shared machine that is the run closest to what the front alone costs.

With --constant, the same fronts answer a hot route whose handler returns a constant (no model,
no record, auth off), beside granian's own RSGI interface answering a constant: the front alone.

Run: .venv/bin/python bench/front_end.py [--duration S] [--rounds N] [--fronts a,b] [--constant]
(granian: `.venv/bin/pip install granian`; it is not a dependency of foretell)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness import wrk
from harness.models import EXAMPLES, digits_model
from harness.procs import HOST, free_port, spawned
from harness.runner import measured, wait_ready
from harness.servers import VENV_BIN, foretell_routes, oip_body
from harness.targets import Route, ServerSpec

FRONTS = ("uvicorn ASGI", "uvicorn lane", "granian ASGI")
CONSTANT_FRONTS = (*FRONTS, "granian RSGI", "granian RSGI lane")
CONNECTIONS = (1, 64)
CONSTANT = b'{"outputs":[{"name":"label","datatype":"INT64","shape":[1],"data":[0]}]}'


def constant_app(settings: Any) -> Any:
    """A FastAPI app whose one hot route answers CONSTANT, as foretell declares its own."""
    from fastapi import APIRouter, FastAPI
    from starlette.responses import Response

    from foretell.api.errors import install
    from foretell.api.hotpath import Call, hot_route
    from foretell.domain.access import Scope

    async def constant(call: Call) -> Response:
        return Response(CONSTANT, media_type="application/json")

    router = APIRouter()
    hot_route(router, "POST", "/v2/models/{owner}/{name}/infer", constant, scope=Scope.PREDICT)
    app = FastAPI()
    install(app)
    app.include_router(router)
    app.state.settings = settings
    app.state.service = object()
    app.state.authenticator = None
    app.state.anonymous = None
    return app


async def rsgi_constant(scope: Any, protocol: Any) -> None:
    await protocol()
    protocol.response_bytes(200, [("content-type", "application/json")], CONSTANT)


def rsgi_lane(app: Any) -> Any:
    """The hot routes on granian's RSGI, as api.lane serves them on uvicorn's protocol: the same
    HotPaths.answer (auth, body, handler, error shapes); what RSGI needs around it (its headers
    as a mapping of str, its body as an awaitable) converted per request. No body limit, no
    FastAPI for other paths: a lower bound on what a granian front doing foretell's work costs."""
    from starlette.datastructures import Headers

    from foretell.api.hotpath import HotPaths, hot_routes

    hot = HotPaths(app, hot_routes(app))

    async def serve(scope: Any, protocol: Any) -> None:
        matched = hot.match(scope.method, scope.path)
        if matched is None:
            protocol.response_empty(404, [])
            return
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()]
        response = await hot.answer(scope.method, matched, Headers(raw=raw), protocol)
        if response is not None:
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
            protocol.response_bytes(response.status_code, headers, bytes(response.body))

    return serve


def serve_constant(front: str, port: int) -> None:
    """Answer CONSTANT behind `front` in this process until SIGTERM."""
    import uvloop

    from foretell.api.app import front as front_of
    from foretell.cli import serve as cli
    from foretell.config import Settings

    settings = Settings(repository=Path("."), host=HOST, port=port, auth=False)
    app = constant_app(settings)
    if front.startswith("uvicorn"):
        import uvicorn

        served = front_of(app) if front == "uvicorn lane" else front_of(app).asgi
        uvicorn.Server(cli.uvicorn_config(settings, served)).run()
        return
    from granian.constants import Interfaces
    from granian.server.embed import Server as Granian

    if front.startswith("granian RSGI"):
        target = rsgi_lane(app) if front == "granian RSGI lane" else rsgi_constant
        server = Granian(target, address=HOST, port=port, interface=Interfaces.RSGI)
    else:
        server = Granian(front_of(app).asgi, address=HOST, port=port, interface=Interfaces.ASGI)
    uvloop.run(server.serve())


def measure_constant(front: str, scratch: Path, seconds: float) -> dict[tuple[str, int], Measured]:
    """(route, connections) -> (req/s, p50, server CPU per request, noise), front only."""
    folder = scratch / ("constant-" + front.replace(" ", "-"))
    folder.mkdir(exist_ok=True)
    port = free_port()
    argv = [sys.executable, __file__, "--serve", front, "--constant", "--port", str(port)]
    body = oip_body(digits_model())
    route = Route("constant", "/v2/models/demo/digits/infer", body, expect='"outputs"')
    spec = ServerSpec(front, lambda p, s: argv, [route])
    return _drive(front, argv, port, folder, spec, seconds)


def serve(front: str, repository: Path, port: int, data_dir: Path) -> None:
    """Run foretell behind `front` in this process until SIGTERM."""
    from foretell.api.app import asgi, create_app
    from foretell.api.server import Server
    from foretell.cli import serve as cli
    from foretell.config import Settings

    settings = Settings(repository=repository, host=HOST, port=port, data_dir=data_dir)
    if front == "uvicorn lane":
        cli.serve_on(settings, None)  # exactly what `foretell serve` runs
        return
    cli.gc.set_threshold(*cli._GC_THRESHOLDS)
    app = create_app(settings, on_loaded=cli._freeze_heap)
    if front == "uvicorn ASGI":
        Server(cli.uvicorn_config(settings, asgi(app)), app).run()
        return
    import uvloop
    from granian.constants import Interfaces
    from granian.server.embed import Server as Granian

    server = Granian(asgi(app), address=HOST, port=port, interface=Interfaces.ASGI)
    uvloop.run(server.serve())


Measured = tuple[float, float, float, float]  # req/s, p50 ms, CPU µs/request, others on core 0


def measure(front: str, scratch: Path, seconds: float) -> dict[tuple[str, int], Measured]:
    """(route, connections) -> (req/s, p50, server CPU per request, noise) for one front."""
    folder = scratch / front.replace(" ", "-")
    folder.mkdir(exist_ok=True)
    data_dir = folder / "data"
    model = digits_model()
    key: dict[str, str] = {}
    create = [str(VENV_BIN / "foretell"), "keys", "create", "--owner", "demo"]
    made = subprocess.run(
        [*create, "--scope", "predict", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    key["Authorization"] = f"Bearer {made.stdout.strip()}"
    routes = foretell_routes(model, key)
    port = free_port()
    repository = folder / "repository"
    (repository / "demo").mkdir(parents=True, exist_ok=True)
    if not (repository / "demo" / "digits").exists():
        (repository / "demo" / "digits").symlink_to(EXAMPLES / "demo" / "digits")
    argv = [sys.executable, __file__, "--serve", front, "--port", str(port), str(data_dir)]
    argv += ["--repository", str(repository)]
    spec = ServerSpec(
        front, lambda p, s: argv, routes, ready_path="/health/ready", start_timeout_s=300.0
    )
    return _drive(front, argv, port, folder, spec, seconds)


def _drive(
    front: str, argv: list[str], port: int, folder: Path, spec: ServerSpec, seconds: float
) -> dict[tuple[str, int], Measured]:
    found: dict[tuple[str, int], Measured] = {}
    with spawned(front, argv, port, folder / "server.log") as server:
        wait_ready(server, spec)
        for route in spec.routes:
            script = folder / f"{route.path.count('/')}-{len(route.body)}.lua"
            script.write_text(wrk.lua_script(route.body, route.headers, route.expect))
            url = server.base_url + route.path
            wrk.run(url, script, 16, 1.0)  # warm-up
            for connections in CONNECTIONS:
                run = measured(server, url, script, connections, seconds)
                if run.errors:
                    raise SystemExit(f"{front} {route.label}: {run.error_text()}")
                cpu = run.cpu_us_per_request
                found[route.label, connections] = (run.rps, run.p50_ms, cpu, run.others_server)
                print(
                    f"  {front:13} {route.label:38} c={connections:<3} {run.rps:8,.0f} req/s "
                    f"p50 {run.p50_ms:5.2f} ms  {run.cpu_us_per_request:5.0f} µs CPU/req  "
                    f"others {run.others_server:.0%}/{run.others_client:.0%}",
                    flush=True,
                )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fronts", help="comma-separated; default: all of them")
    parser.add_argument("--constant", action="store_true", help="the front alone")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--repository", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("data_dir", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve and args.constant:
        serve_constant(args.serve, args.port)
        return
    if args.serve:
        serve(args.serve, args.repository, args.port, args.data_dir)
        return
    fronts = args.fronts.split(",") if args.fronts else CONSTANT_FRONTS if args.constant else FRONTS
    bench = measure_constant if args.constant else measure
    results: dict[tuple[str, str, int], list[Measured]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="foretell-front-") as tmp:
        for round_ in range(args.rounds):
            for front in fronts if round_ % 2 == 0 else reversed(fronts):
                print(f"round {round_ + 1}: {front}", flush=True)
                for (route, c), value in bench(front, Path(tmp), args.duration).items():
                    results[front, route, c].append(value)
    print("\nquietest round: route | conns | front | req/s | p50 ms | server CPU µs/req | others")
    for (front, route, c), values in sorted(results.items(), key=lambda kv: kv[0][1:]):
        rps, p50, cpu, others = min(values, key=lambda v: v[3])
        print(f"| {route} | {c} | {front} | {rps:,.0f} | {p50:.2f} | {cpu:.0f} | {others:.0%} |")


if __name__ == "__main__":
    main()
