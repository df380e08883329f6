"""A running prediction's growth is saved for other API processes only where the store is shared
(Settings.store_shared); alone on its store, only its webhook's events cause saves."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_streaming_task import HOOK, TEXT, chunk, rig

from foretell.config import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("workers", "db", "shared"),
    [
        (1, None, False),
        (4, None, True),
        (1, "postgresql://u@h/db", True),
        (1, "sqlite:////tmp/x.db", False),
    ],
)
def test_a_store_is_shared_with_several_workers_or_on_a_database_server(
    workers: int, db: str | None, shared: bool
) -> None:
    assert Settings(workers=workers, db=db).store_shared is shared


async def test_alone_on_its_store_a_running_record_is_not_saved_as_it_grows(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    r.context = replace(r.context, progress_to_store=False)
    task = r.task()
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    before = len(r.store.updates())
    job.on_chunk(chunk("a", mode=TEXT, logs="1\n"))
    r.clock.now += 10
    job.on_chunk(chunk("b", mode=TEXT))
    assert r.store.updates()[before:] == []
    assert r.sweeper.entries == {}
    assert (task.prediction.output, task.prediction.logs) == ("ab", "1\n")  # in memory


async def test_alone_on_its_store_a_webhook_still_gets_its_progress_events(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    r.context = replace(r.context, progress_to_store=False)
    task = r.task(webhook=HOOK)
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk("a", mode=TEXT))
    assert [w.events for w in r.store.writes if w.events][-1] == ["output"]
