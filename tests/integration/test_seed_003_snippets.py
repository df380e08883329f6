"""Seed 003's own client snippets, run as the seed prints them against a real `foretell serve`
started as `make run` starts it (demo/sentiment as GPUX's model, anonymous access on), with only
the base URL substituted: a GPUX client has no place for a key."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _server import DEMO_MODELS, ROOT, Server, running_server

SEED = Path("/work/shared/seeds/003_49719b4f03a8186c.txt")
if not SEED.exists():  # the seeds sit beside the repository wherever it is checked out
    SEED = ROOT.parent / "shared" / "seeds" / "003_49719b4f03a8186c.txt"
SEED_URL = "http://localhost:8080"


def blocks(language: str) -> list[str]:
    """The seed's fenced code blocks in `language`, in order."""
    return re.findall(rf"```{language}\n(.*?)```", SEED.read_text(), flags=re.DOTALL)


def make_run_flags() -> list[str]:
    """The options `make run` gives `foretell serve`."""
    recipe = re.search(r"^run:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert recipe is not None
    return shlex.split(recipe.group(1))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    flags = make_run_flags()
    assert "--anonymous-public" in flags
    default_model = flags[flags.index("--default-model") + 1]
    assert default_model == "demo/sentiment"
    base = tmp_path_factory.mktemp("seed003")
    repo = base / "repo"
    (repo / "demo").mkdir(parents=True)
    (repo / "demo" / "sentiment").symlink_to(DEMO_MODELS / "sentiment", target_is_directory=True)
    env = {"FORETELL_ANONYMOUS_PUBLIC": "true", "FORETELL_DEFAULT_MODEL": default_model}
    with running_server(repo, base / "data", env=env) as started:
        yield started


def run(command: list[str], snippet: str, server: Server) -> str:
    code = snippet.replace(SEED_URL, server.url)
    assert code != snippet, "the snippet no longer names the seed's URL"
    done = subprocess.run([*command, code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_the_seeds_curl_sentiment_example_answers_logits(server: Server) -> None:
    sentiment = next(b for b in blocks("bash") if "input_ids" in b)

    answer = json.loads(run(["bash", "-c"], sentiment, server))

    negative, positive = answer["logits"]
    assert positive > negative  # "i love this"


# The seed's client examples send {"text": …} and read "sentiment": a text model's inputs and
# outputs, where its curl example (above) is demo/sentiment's, input_ids and attention_mask in,
# logits out. One /predict answers both only once GPUX's model takes text as well (open: a
# model that takes either, or a default model chosen by the inputs a request names).
TEXT_MODEL = pytest.mark.xfail(
    raises=AssertionError,
    strict=True,
    reason="demo/sentiment takes input_ids/attention_mask, not the seed's {'text': …}",
)


@pytest.mark.slow
@TEXT_MODEL
def test_the_seeds_python_client_example_runs(server: Server) -> None:
    (python,) = blocks("python")[:1]

    printed = run([sys.executable, "-c"], python, server)

    assert printed.startswith("Sentiment: ")


@pytest.mark.slow
@TEXT_MODEL
def test_the_seeds_javascript_fetch_example_runs(server: Server) -> None:
    javascript = blocks("javascript")[0]
    fetch = javascript.split("// Axios")[0]  # axios is a package the seed assumes installed

    printed = run(["node", "--input-type=module", "-e"], fetch, server)

    assert printed.strip() != "undefined"
