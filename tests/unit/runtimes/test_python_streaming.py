"""A python model whose predict is a generator (or async generator) streams: its schema is Cog's
iterator array, each item is checked against `Iterator[X]` as it comes, and the replica's run
of the batch sends each on as it is yielded."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from foretell.domain import OutputStream
from foretell.domain.files import FileData
from foretell.errors import ModelLoadFailed
from foretell.manifest import ModelVersion
from foretell.runtimes import LoadedModel
from foretell.workers import ProcessReplica
from foretell.workers.child import run_batch
from foretell.workers.protocol import Chunk
from foretell.workers.streams import Live

Load = Callable[[ModelVersion], LoadedModel]
MakeVersion = Callable[..., ModelVersion]


def python_version(make_version: MakeVersion, source: str) -> ModelVersion:
    manifest = {"runtime": "python", "predictor": "predict.py:Model"}
    return make_version(manifest, {"predict.py": textwrap.dedent(source)})


TOKENS = """
from collections.abc import Iterator

class Model:
    def predict(self, text: str) -> Iterator[str]:
        for word in text.split():
            print(f"yielding {word}")
            yield word + " "
"""


def test_a_text_generator_streams_its_pieces_and_its_output_is_their_concatenation(
    make_version: MakeVersion, load: Load
) -> None:
    model = load(python_version(make_version, TOKENS))
    assert model.signature.output_schema == {
        "type": "array",
        "items": {"type": "string"},
        "x-cog-array-type": "iterator",
        "x-cog-array-display": "concatenate",
    }
    sent: list[Chunk] = []
    (outcome,) = run_batch(model, [{"text": "to be"}], live=Live(7, sent.append))
    assert [(c.batch_id, c.index, c.items, c.logs) for c in sent] == [
        (7, 0, (), "yielding to\n"),
        (7, 0, ("to ",), ""),
        (7, 0, (), "yielding be\n"),
        (7, 0, ("be ",), ""),
    ]
    assert (outcome.output, outcome.streamed, outcome.logs) == ("to be ", OutputStream.TEXT, "")


def test_an_async_generators_items_are_checked_and_listed(
    make_version: MakeVersion, load: Load
) -> None:
    model = load(
        python_version(
            make_version,
            """
            import asyncio
            from collections.abc import AsyncIterator
            import numpy as np
            from pydantic import BaseModel

            class Tag(BaseModel):
                name: str

            class Point(BaseModel):
                x: int
                tags: list[Tag]

            class Model:
                async def predict(self, n: int) -> AsyncIterator[Point]:
                    for i in range(n):
                        await asyncio.sleep(0)
                        yield {"x": np.int64(i), "tags": [{"name": f"p{i}"}]}
            """,
        )
    )
    schema = model.signature.output_schema
    assert schema["x-cog-array-type"] == "iterator"
    assert "x-cog-array-display" not in schema
    # The item's definitions at the top, where its references point.
    assert schema["items"]["properties"]["tags"]["items"] == {"$ref": "#/$defs/Tag"}
    assert "$defs" not in schema["items"]
    assert schema["$defs"]["Tag"]["properties"] == {"name": {"title": "Name", "type": "string"}}
    (outcome,) = run_batch(model, [{"n": 2}])
    assert outcome.output == [
        {"x": 0, "tags": [{"name": "p0"}]},
        {"x": 1, "tags": [{"name": "p1"}]},
    ]
    assert outcome.streamed is OutputStream.ITEMS


def test_an_item_not_matching_the_annotation_fails_its_input_after_the_good_ones(
    make_version: MakeVersion, load: Load
) -> None:
    model = load(
        python_version(
            make_version,
            """
            from collections.abc import Iterator

            class Model:
                def predict(self, n: int) -> Iterator[int]:
                    yield 1
                    yield "not a number"
            """,
        )
    )
    sent: list[Chunk] = []
    (outcome,) = run_batch(model, [{"n": 1}], live=Live(1, sent.append))
    assert [c.items for c in sent] == [(1,)]
    assert outcome.error is not None
    assert outcome.error.startswith(
        "ValueError: predict() yielded a str that does not match its return annotation's item type"
    )


def test_an_input_file_lasts_as_long_as_its_stream(make_version: MakeVersion, load: Load) -> None:
    model = load(
        python_version(
            make_version,
            """
            from collections.abc import Iterator
            from pathlib import Path

            class Model:
                def predict(self, doc: Path) -> Iterator[str]:
                    for line in doc.read_text().splitlines(keepends=True):
                        yield f"{doc}|{line}"
                        assert doc.exists(), "removed mid-stream"
            """,
        )
    )
    doc = FileData("doc.txt", "text/plain", b"one\ntwo\n")
    (outcome,) = run_batch(model, [{"doc": doc}], capture_logs=False)
    assert outcome.error is None
    lines = [piece.split("|") for piece in outcome.output.splitlines()]
    assert [text for _, text in lines] == ["one", "two"]
    assert not Path(lines[0][0]).exists(), "removed once the stream ended"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            """
            class Model:
                def predict(self, n: int) -> str:
                    yield "x"
            """,
            "is a generator, so its return annotation must be Iterator[X]",
        ),
        (
            """
            class Model:
                async def predict(self, n: int) -> str:
                    return "x"
            """,
            "is an async def returning one output",
        ),
    ],
)
def test_a_predict_that_cannot_stream_as_written_is_refused_at_load(
    make_version: MakeVersion, load: Load, source: str, reason: str
) -> None:
    with pytest.raises(ModelLoadFailed) as caught:
        load(python_version(make_version, source))
    assert reason in caught.value.reason


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_generator_model_streams_through_a_real_replica_process(
    make_version: MakeVersion, anyio_backend: str
) -> None:
    replica = ProcessReplica(python_version(make_version, TOKENS))
    sent: list[Chunk] = []
    try:
        await replica.start()
        (outcome,) = await replica.predict([{"text": "to be"}], sent.append)
    finally:
        await replica.stop()
    assert [(c.items, c.logs) for c in sent] == [
        ((), "yielding to\n"),
        (("to ",), ""),
        ((), "yielding be\n"),
        (("be ",), ""),
    ]
    assert (outcome.output, outcome.streamed, outcome.logs) == ("to be ", OutputStream.TEXT, "")
