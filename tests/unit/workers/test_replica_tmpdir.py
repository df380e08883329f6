"""A replica process's temporary files (its inputs' local copies, the model's own) are in a
directory of its own that the parent removes: a process killed mid-prediction never gets to
remove the caller's file itself."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

import pytest

from foretell.domain.files import FileData
from foretell.errors import WorkerCrashed
from foretell.files.datauri import decode_data_uri
from foretell.manifest import ModelVersion, scan_repository
from foretell.workers import ProcessReplica

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "models"
WITHIN_S = 20.0  # a bound on a loaded machine; the test waits for an event, not this long


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's temporary directory, for the parent (tempfile) and what it spawns (TMPDIR)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def holds_file() -> ModelVersion:
    (version,) = [v for v in scan_repository(FIXTURES).versions if v.name == "holds-file"]
    return version


def left_in(directory: Path) -> list[str]:
    return os.listdir(directory)


def held_input(pid: int) -> Path | None:
    """The input file that process `pid` has open, once it has."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed since it was listed
            continue
        if "foretell-input-" in target:
            return Path(target)
    return None


async def test_a_replica_killed_holding_an_input_file_leaves_nothing_behind(
    temp_root: Path,
) -> None:
    media, data = decode_data_uri("data:text/plain;base64,aGVsZCB3aGlsZSBraWxsZWQ=", 1024)
    file = FileData("held.txt", media or "application/octet-stream", data)
    replica = ProcessReplica(holds_file())
    try:
        await replica.start()
        assert replica._process is not None
        pid = replica._process.pid
        task = asyncio.create_task(replica.predict([{"file": file, "seconds": 60}]))
        async with asyncio.timeout(WITHIN_S):
            while (path := held_input(pid)) is None:
                assert not task.done(), task
                await asyncio.sleep(0.01)
        assert path.read_bytes() == b"held while killed"
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerCrashed):
            await asyncio.wait_for(task, WITHIN_S)
        # The parent noticed (predict raised): the file, its directory and the replica's are gone.
        assert not path.exists()
        assert left_in(temp_root) == []
        assert path.parent.parent.name.startswith("foretell-replica-"), path
    finally:
        await replica.stop()
    assert left_in(temp_root) == []


async def test_a_replica_stopped_removes_its_directory(
    temp_root: Path,
) -> None:
    replica = ProcessReplica(holds_file())
    try:
        await replica.start()
        (made,) = left_in(temp_root)
        assert made.startswith("foretell-replica-")
        (outcome,) = await replica.predict(
            [{"file": FileData("a.txt", "text/plain", b"abc"), "seconds": 0}]
        )
        assert (outcome.output, outcome.error) == (3, None)
    finally:
        await replica.stop()
    assert left_in(temp_root) == []
