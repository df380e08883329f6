"""Replies larger than a socket buffer cross the process boundary whole under `foretell serve`
(uvloop), where the loop's reader once made the pipe non-blocking and such a reply, read in
half, looked like the replica dying ("exited (code 0) mid-prediction")."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _server import build_repository, running_server

pytestmark = pytest.mark.slow


def test_large_replies_under_concurrency_all_arrive(tmp_path: Path) -> None:
    repo = build_repository(tmp_path, demo=False, fixtures=["big-output"])
    with running_server(repo, tmp_path / "data") as server, server.client() as client:

        def predict(n: int) -> tuple[str, int]:
            response = client.post(
                "/v1/predictions",
                json={"model": "fixtures/big-output", "input": {"n": n}},
                headers={"Prefer": "wait=30"},
            )
            record = response.json()
            return record["status"], len(record["output"] or [])

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(predict, range(48)))
        assert "is gone" not in server.log(), "a replica was taken for dead"
    assert results == [("succeeded", 50_000)] * 48
