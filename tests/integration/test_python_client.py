"""The Python client against one real `foretell serve`: both clients predict, wait, list, upload
(a file, and a Path in an input) and get typed errors (422 with its fields, 404, 401); and the
README's "Python client" code blocks, extracted from README.md, run as written, so the docs
stay true."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _server import ROOT, Server, build_repository, running_server

from foretell.client import (
    AsyncClient,
    Client,
    InvalidInput,
    NotFound,
    Unauthorized,
)

pytestmark = pytest.mark.slow

MODELS = ["iris", "text-stats", "digits-image", "tiny-gpt2"]
SETOSA = [[5.1, 3.5, 1.4, 0.2]]
BAD_TEXT = {"text": "", "top_k": 50}  # too short, and past top_k's limit of 20
RUN_S = 300.0  # one README block, on a busy machine; nothing waits this out when well


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("python_client")
    repo = build_repository(base, demo=MODELS, fixtures=[])
    with running_server(repo, base / "data") as started:
        yield started


def readme_blocks() -> list[str]:
    """The ```python blocks of README.md's "Python client" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python client\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```python\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)


BLOCKS = readme_blocks()
# What each block prints that shows it did what its comments say.
SHOWN = [
    [
        r"^succeeded \[0\]$",
        r"^file_\S+ image/png$",
        r"^10$",
        r"^\['text', 'top_k'\]$",
        r"^404 prediction_not_found$",
    ],
    [
        r"^\{'word': 'be', 'count': 2\}\n\{'word': 'it', 'count': 2\}$",
        r"^succeeded$",
        r"^401 HTTP 401: ",
    ],
]


def test_the_readme_has_a_sync_and_an_async_example() -> None:
    assert len(BLOCKS) == 2
    assert "Client(url, token=key)" in BLOCKS[0]
    assert "AsyncClient(url" in BLOCKS[1]


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=["sync", "async"])
def test_the_readme_example_runs_as_written(server: Server, tmp_path: Path, index: int) -> None:
    script = tmp_path / "example.py"
    script.write_text(BLOCKS[index], encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORETELL_")}
    env |= {"FORETELL_URL": server.url, "FORETELL_API_KEY": server.admin_key}

    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_S,
        check=False,
    )

    assert done.returncode == 0, done.stderr + done.stdout
    for shown in SHOWN[index]:
        assert re.search(shown, done.stdout, flags=re.MULTILINE), (shown, done.stdout)


def test_the_sync_client_end_to_end(server: Server, tmp_path: Path) -> None:
    image = tmp_path / "blank.png"
    _png(image)
    with Client(server.url, token=server.admin_key) as client:
        record = client.predict("demo/iris", {"features": SETOSA}, timeout=60)
        assert (record["status"], record["output"]["label"]) == ("succeeded", [0])

        started = client.create_prediction("demo/iris", {"features": SETOSA})
        assert client.wait(started["id"], timeout=60)["status"] == "succeeded"
        listed = [p["id"] for p in client.iter_predictions(model="demo/iris", page_size=1)]
        assert listed[:2] == [started["id"], record["id"]]  # newest first, one a page

        stored = client.upload(image.read_bytes(), filename="blank.png")
        assert (stored["name"], stored["content_type"]) == ("blank.png", "image/png")
        digits = client.predict("demo/digits-image", {"image": image}, timeout=60)
        assert digits["status"] == "succeeded", digits
        assert digits["input"]["image"].startswith("file_")

        with pytest.raises(InvalidInput) as refused:
            client.create_prediction("demo/text-stats", BAD_TEXT, validate_input=True)
        assert refused.value.status == 422
        assert set(refused.value.fields) == {"text", "top_k"}
        assert "20" in refused.value.fields["top_k"]

        with pytest.raises(NotFound) as missing:
            client.get_prediction("no-such-prediction")
        assert "no-such-prediction" in missing.value.message

    with Client(server.url, token="not-a-key") as stranger, pytest.raises(Unauthorized):
        stranger.get_prediction(record["id"])


def test_the_async_client_end_to_end(server: Server, tmp_path: Path) -> None:
    image = tmp_path / "blank.png"
    _png(image)

    async def main() -> None:
        async with AsyncClient(server.url, token=server.admin_key) as client:
            records = await asyncio.gather(
                *(client.predict("demo/iris", {"features": SETOSA}) for _ in range(3))
            )
            assert [r["status"] for r in records] == ["succeeded"] * 3

            stored = await client.upload(image)
            digits = await client.predict("demo/digits-image", {"image": stored["id"]})
            assert digits["status"] == "succeeded", digits

            started = await client.create_prediction("demo/tiny-gpt2", {"prompt": "the sea"})
            text = [e.data async for e in client.stream(started["id"]) if e.event == "output"]
            done = await client.wait(started)
            assert "".join(text) == done["output"]

            with pytest.raises(InvalidInput) as refused:
                await client.predict("demo/text-stats", BAD_TEXT, validate_input=True)
            assert set(refused.value.fields) == {"text", "top_k"}
            with pytest.raises(NotFound):
                await client.cancel_prediction("no-such-prediction")

        async with AsyncClient(server.url, token="not-a-key") as stranger:
            with pytest.raises(Unauthorized) as unknown:
                await stranger.list_predictions()
            assert unknown.value.status == 401

    asyncio.run(main())


def _png(path: Path) -> None:
    from PIL import Image

    Image.new("L", (8, 8), 255).save(path)
