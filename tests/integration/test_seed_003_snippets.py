"""Seed 003's own client snippets, run as the seed prints them against a real `foretell serve`
started as `make run` starts it (demo/sentiment, demo/sentiment-text and demo/digits-image as
GPUX's default models, anonymous access on), with only the base URL substituted: a GPUX client has
no place for a key. The image example's elided pixels are filled in with a digit of the dataset."""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _server import DEMO_MODELS, ROOT, Server, running_server
from sklearn.datasets import load_digits

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
    default_models = [flags[i + 1] for i, flag in enumerate(flags) if flag == "--default-model"]
    assert default_models == ["demo/sentiment", "demo/sentiment-text", "demo/digits-image"]
    base = tmp_path_factory.mktemp("seed003")
    repo = base / "repo"
    (repo / "demo").mkdir(parents=True)
    for ref in default_models:
        name = ref.removeprefix("demo/")
        (repo / ref).symlink_to(DEMO_MODELS / name, target_is_directory=True)
    env = {
        "FORETELL_ANONYMOUS_PUBLIC": "true",
        "FORETELL_DEFAULT_MODEL": ",".join(default_models),  # as the repeated flag gives them
    }
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


@pytest.mark.slow
def test_the_seeds_curl_image_example_answers_the_digits_probabilities(server: Server) -> None:
    image = next(b for b in blocks("bash") if '"image"' in b)
    digits = load_digits()
    seven = int(np.flatnonzero(digits.target == 7)[0])
    # The seed elides the pixels ("[[[[0.5, 0.3, ...]]]]"): one 8x8 image of the dataset's.
    full = json.dumps([[(digits.images[seven] / 16).tolist()]])
    assert "[[[[0.5, 0.3, ...]]]]" in image

    answer = json.loads(run(["bash", "-c"], image.replace("[[[[0.5, 0.3, ...]]]]", full), server))

    assert list(answer) == ["probabilities"]
    assert len(answer["probabilities"]) == 10
    assert int(np.argmax(answer["probabilities"])) == 7


# The seed's client examples send {"text": …} and read "sentiment" from the same /predict as the
# curl example's tokens: demo/sentiment-text answers them, the default model whose one input is
# `text`. "I love GPUX!" reads as positive.


@pytest.mark.slow
def test_the_seeds_python_client_example_runs(server: Server) -> None:
    (python,) = blocks("python")[:1]

    printed = run([sys.executable, "-c"], python, server)

    sentiment, tensors = printed.splitlines()
    assert sentiment.startswith("Sentiment: ")
    negative, positive = json.loads(sentiment.removeprefix("Sentiment: "))
    assert positive > 0.5 > negative
    assert negative + positive == pytest.approx(1.0)
    assert list(ast.literal_eval(tensors)) == ["logits"]  # the tensor input's answer, a dict


@pytest.mark.slow
def test_the_seeds_javascript_fetch_example_runs(server: Server) -> None:
    javascript = blocks("javascript")[0]
    fetch = javascript.split("// Axios")[0]  # axios is a package the seed assumes installed

    printed = run(["node", "--input-type=module", "-e"], fetch, server)

    assert printed.strip() != "undefined"
    negative, positive = json.loads(printed)  # node logs a short array of numbers as JSON
    assert positive > 0.5 > negative
