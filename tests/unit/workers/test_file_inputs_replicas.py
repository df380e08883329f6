"""A file input crosses every replica boundary as bytes (FileData): pickled to a worker process
(and so to a Ray actor, which pickles its arguments the same way) or handed to a thread."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path

import pytest

from foretell.domain.files import FileData
from foretell.manifest import ModelVersion, scan_repository
from foretell.workers import ProcessReplica, ThreadReplica
from foretell.workers.protocol import Predict

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "models"
IMAGE = FileData("digit.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def gone(path: str) -> bool:
    return not Path(path).exists()


def fixture(name: str) -> ModelVersion:
    (version,) = [v for v in scan_repository(FIXTURES).versions if v.name == name]
    return version


def test_a_predict_message_with_files_crosses_a_pipe_unchanged() -> None:
    message = Predict(3, [{"file": IMAGE, "more": [IMAGE]}])
    assert pickle.loads(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)) == message
    parent, child = multiprocessing.Pipe(duplex=True)
    with parent, child:
        parent.send(message)
        assert child.recv() == message


@pytest.mark.parametrize("replica_class", [ProcessReplica, ThreadReplica])
async def test_the_model_reads_the_bytes_from_a_temporary_file(replica_class: type) -> None:
    replica = replica_class(fixture("file-info"))
    try:
        await replica.start()
        (outcome,) = await replica.predict([{"file": IMAGE}])
    finally:
        await replica.stop()
    assert outcome.error is None, outcome.error
    assert outcome.output["size"] == len(IMAGE.data)
    assert outcome.output["head"] == IMAGE.data[:8].hex()
    assert outcome.output["suffix"] == ".png"
    assert gone(outcome.output["path"])
