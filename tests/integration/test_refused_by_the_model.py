"""Input the model's own code refuses (a validator its schema cannot show) fails as the
caller's error, is recorded, and reads back; the other inputs of its batch still succeed."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest
import yaml
from _app import serving

from foretell.config import Settings

pytestmark = pytest.mark.anyio

PREDICTOR = """
from typing import Annotated

from pydantic import AfterValidator

from foretell.sdk import Predictor


def even(n: int) -> int:
    if n % 2:
        raise ValueError("must be even")
    return n


class Model(Predictor):
    def predict(self, n: Annotated[int, AfterValidator(even)]) -> int:
        return n
"""


async def test_a_validator_refusal_is_a_recorded_user_error(tmp_path: Path) -> None:
    version = tmp_path / "repository" / "acme" / "even" / "1"
    version.mkdir(parents=True)
    (version / "predict.py").write_text(textwrap.dedent(PREDICTOR))
    manifest = {
        "runtime": "python",
        "predictor": "predict.py:Model",
        "batching": {"max_batch_size": 4, "max_delay_ms": 50},
    }
    (version / "foretell.yaml").write_text(yaml.safe_dump(manifest))
    settings = Settings(repository=tmp_path / "repository", data_dir=tmp_path / "data")
    async with serving(settings) as api:
        odd, even = await asyncio.gather(
            api.post("acme/even", {"n": 3}, prefer="wait=10"),
            api.post("acme/even", {"n": 4}, prefer="wait=10"),
        )
        assert even.status_code == 201, even.text
        assert even.json()["output"] == 4
        assert odd.status_code == 201, odd.text
        record = odd.json()
        assert record["status"] == "failed"
        assert record["error"] == {
            "source": "user",
            "message": "invalid input: input.n: Value error, must be even",
            "detail": [
                {
                    "type": "value_error",
                    "loc": ["input", "n"],
                    "msg": "Value error, must be even",
                    "input": 3,
                    "ctx": {"error": "must be even"},
                }
            ],
        }
        assert (await api.get(record["id"]))["error"] == record["error"]
        listed = await api.http.get("/v1/predictions")
        assert listed.status_code == 200, listed.text
