"""A model's files cross every replica boundary as bytes: a worker process (pickled through its
socket), a thread of the server; and the outcome says it holds them."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path

import pytest

from foretell.domain.files import FileData
from foretell.manifest import ModelVersion, scan_repository
from foretell.workers import Outcome, ProcessReplica, ThreadReplica
from foretell.workers.protocol import Done

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "models"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fixture(name: str) -> ModelVersion:
    (version,) = [v for v in scan_repository(FIXTURES).versions if v.name == name]
    return version


def test_an_outcome_with_files_crosses_a_socket_pair_unchanged() -> None:
    image = FileData("a.png", "image/png", PNG + bytes(range(256)) * 64)
    done = Done(7, [Outcome({"images": [image, image]}, logs="drew\n", files=True)])
    data = pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(data) == done
    parent, child = multiprocessing.Pipe(duplex=True)
    with parent, child:
        parent.send(done)
        received = child.recv()
    assert received == done
    assert received.outcomes[0].files is True


async def test_a_worker_process_sends_back_the_file_its_model_wrote() -> None:
    replica = ProcessReplica(fixture("draws-image"))
    try:
        await replica.start()
        (outcome,) = await replica.predict([{"size": 5, "colour": "green"}])
    finally:
        await replica.stop()
    assert outcome.error is None, outcome.error
    assert outcome.files
    assert isinstance(outcome.output, FileData)
    assert (outcome.output.name, outcome.output.content_type) == ("green-5.png", "image/png")
    assert outcome.output.data.startswith(PNG)


async def test_a_thread_replica_hands_over_the_files_in_place() -> None:
    replica = ThreadReplica(fixture("draws-images-on-thread"))
    try:
        await replica.start()
        (outcome,) = await replica.predict([{"colours": ["red"]}])
    finally:
        await replica.stop()
    assert outcome.files
    (image,) = outcome.output["images"]
    assert isinstance(image, FileData)
    assert image.data.startswith(PNG)
