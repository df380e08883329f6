"""Store durability: an acknowledged write survives SIGKILL; stores sharing a file agree."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable

from foretell.domain import Prediction, PredictionStatus
from foretell.store import PredictionStore

MakePrediction = Callable[..., Prediction]

# Acknowledged writes, then the process dies at once: no close, no flush, no atexit.
_WRITE_THEN_DIE = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from datetime import UTC, datetime
    from foretell.domain import Prediction, PredictionStatus
    from foretell.store import PredictionStore

    async def main() -> None:
        store = await PredictionStore.open(sys.argv[1])
        now = datetime.now(UTC)
        def make(id: str) -> Prediction:
            status = PredictionStatus.PENDING
            return Prediction(id, "acme", "resnet", 1, status, {"n": id}, now, now)
        await store.insert(make("solo"))
        await asyncio.gather(*(store.insert(make(f"p{i}")) for i in range(50)))
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


def test_an_acknowledged_insert_survives_sigkill(db_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WRITE_THEN_DIE, db_url], capture_output=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()

    async def scenario() -> tuple[Prediction | None, int]:
        store = await PredictionStore.open(db_url)
        try:
            return await store.get("solo"), len((await store.list(limit=1000)).items)
        finally:
            await store.close()

    solo, count = asyncio.run(scenario())
    assert solo is not None
    assert solo.input == {"n": "solo"}
    assert count == 51


def test_two_stores_on_one_file_see_each_others_rows(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> tuple[Prediction | None, Prediction | None]:
        first = await PredictionStore.open(db_url)
        second = await PredictionStore.open(db_url)
        try:
            await first.insert(make_prediction("from-first"))
            p = make_prediction("from-second")
            await second.insert(p)
            p.status = PredictionStatus.SUCCEEDED
            await asyncio.gather(second.update(p), first.insert(make_prediction("more")))
            return await second.get("from-first"), await first.get("from-second")
        finally:
            await first.close()
            await second.close()

    seen_by_second, seen_by_first = asyncio.run(scenario())
    assert seen_by_second is not None
    assert seen_by_first is not None
    assert seen_by_first.status is PredictionStatus.SUCCEEDED
