"""The first admin key when several API processes of one data dir start together (`foretell
serve --workers N`): one key, in the file, whichever process makes it; on both stores."""

from __future__ import annotations

import asyncio
from pathlib import Path

from foretell.auth import KeyManager
from foretell.auth.keys import ADMIN_KEY_FILE
from foretell.store import PredictionStore


def test_processes_starting_together_make_one_first_admin_key(db_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "shared"

    async def scenario() -> tuple[list[str], int]:
        stores = [await PredictionStore.open(db_url) for _ in range(3)]
        try:
            made = await asyncio.gather(*(KeyManager(s.keys).bootstrap(data_dir) for s in stores))
            return [m.key for m in made if m is not None], await stores[0].keys.count()
        finally:
            for store in stores:
                await store.close()

    made, stored = asyncio.run(scenario())
    assert len(made) == 1
    assert stored == 1
    assert (data_dir / ADMIN_KEY_FILE).read_text() == made[0] + "\n"
