"""How long a refused API key takes to refuse, by its length: the key check is a digest lookup
and a constant-time compare, so a wrong key of a real key's length and a short one should cost
the same (a valid key's request is shown beside them).

A timing comparison, not a test: it was one (2 x 300 requests, medians within 0.8-1.25 of each
other) and failed whenever the machine was busy. Run it on an idle machine:

    .venv/bin/python bench/auth_overhead.py [--requests N]

It serves an in-process app (no models) over httpx's ASGI transport, interleaves the requests so
that drift in the machine's speed hits every kind alike, and prints each kind's median and the
ratio of the two wrong-key medians. Exit code 1 if that ratio is outside 0.8-1.25.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from foretell.api.app import asgi, create_app
from foretell.config import Settings
from foretell.domain.access import Scope

BAND = (0.8, 1.25)  # what the old test allowed between the two wrong-key medians


async def measure(requests: int) -> dict[str, float]:
    """Median seconds per GET /v1/models for each kind of caller."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repository"
        repo.mkdir()
        app = create_app(Settings(repository=repo, data_dir=Path(tmp) / "data"))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=asgi(app)), base_url="http://bench"
            ) as http,
        ):
            real = (await app.state.keys.create(owner="bench", scope=Scope.READ)).key
            kinds = {
                "valid key": real,
                "wrong key, same length": "ft_" + "0" * (len(real) - 3),
                "wrong key, short": "ft_0",
            }
            timings: dict[str, list[float]] = {kind: [] for kind in kinds}
            for _ in range(requests):
                for kind, key in kinds.items():
                    started = time.perf_counter()
                    response = await http.get(
                        "/v1/models", headers={"Authorization": f"Bearer {key}"}
                    )
                    timings[kind].append(time.perf_counter() - started)
                    assert response.status_code == (200 if kind == "valid key" else 401), kind
    return {kind: statistics.median(t) for kind, t in timings.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="per kind (default 1000)")
    args = parser.parse_args()
    medians = asyncio.run(measure(args.requests))
    print(f"load average at end: {os.getloadavg()[0]:.2f}; {args.requests} requests per kind")
    for kind, median in medians.items():
        print(f"  {kind:<24} median {median * 1e6:8.1f} us")
    ratio = medians["wrong key, same length"] / medians["wrong key, short"]
    inside = BAND[0] < ratio < BAND[1]
    print(f"same length / short: {ratio:.3f} ({'inside' if inside else 'OUTSIDE'} {BAND})")
    return 0 if inside else 1


if __name__ == "__main__":
    raise SystemExit(main())
