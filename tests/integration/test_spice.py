"""Spice (seed 002) against foretell: its two examples verbatim (host and model names
changed), each dataset problem as a BadRequest that says what is wrong, a forecast that follows
rows appended to a SQLite table, and an ensemble whose members run side by side."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from _app import FIXTURES, serving

from foretell.config import Settings

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("demo/air-passengers", "demo/air-passengers-naive", "demo/iris")

SUCCESS_FIELDS = ["status", "model_name", "model_version", "lookback", "prediction", "duration_ms"]


async def test_the_seeds_get_example(api: Any) -> None:
    # curl "http://localhost:3000/v1/models/my_model_name/predict"
    response = await api.http.get("/v1/models/air-passengers/predict")
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == SUCCESS_FIELDS
    assert body["status"] == "Success"
    assert body["model_name"] == "air-passengers"
    assert body["model_version"] == "1"
    assert body["lookback"] == 120
    assert len(body["prediction"]) == 12
    assert all(300 < v < 800 for v in body["prediction"]), body["prediction"]
    records = await api.list_all(model="demo/air-passengers")
    assert any(r["output"]["prediction"] == body["prediction"] for r in records), "recorded"


async def test_the_seeds_post_example_runs_both_members(api: Any) -> None:
    response = await api.http.post(
        "/v1/predict",
        content=b'{"predictions": [{"model_name": "air-passengers"}, '
        b'{"model_name": "demo/air-passengers-naive"}]}',
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["duration_ms", "predictions"]
    first, second = body["predictions"]
    assert [first["status"], second["status"]] == ["Success", "Success"]
    assert list(first) == SUCCESS_FIELDS
    assert second["model_name"] == "demo/air-passengers-naive"
    assert first["prediction"] != second["prediction"], "two methods, two forecasts"


async def test_an_unknown_model_and_one_that_needs_a_body_are_bad_requests(api: Any) -> None:
    unknown = await api.http.get("/v1/models/nope/predict")
    assert unknown.status_code == 404  # documented: an unknown model is a 404
    body = unknown.json()
    assert list(body) == ["status", "error_message", "model_name", "lookback", "duration_ms"]
    assert body["status"] == "BadRequest"
    assert body["error_message"] == "model 'nope' not found"
    needs = await api.http.get("/v1/models/demo/iris/predict")
    assert needs.status_code == 400
    assert needs.json()["error_message"] == (
        "model 'demo/iris' needs an input body (features); call it through POST /v1/predictions"
    )


async def test_one_failing_member_does_not_fail_the_ensemble(api: Any) -> None:
    response = await api.http.post(
        "/v1/predict",
        json={"predictions": [{"model_name": "air-passengers"}, {"model_name": "nope"}]},
    )
    assert response.status_code == 200
    statuses = [p["status"] for p in response.json()["predictions"]]
    assert statuses == ["Success", "BadRequest"]


def forecast_model(root: Path, ref: str, dataset: dict[str, Any], **options: Any) -> None:
    folder = root / ref / "1"
    folder.mkdir(parents=True)
    manifest = {
        "runtime": "forecast",
        "options": {"dataset": dataset, "lookback": 24, "horizon": 3, **options},
    }
    (folder / "foretell.yaml").write_text(yaml.safe_dump(manifest))


def monthly_csv(path: Path, n: int, *, skip: int | None = None, bad: int | None = None) -> None:
    rows = []
    for i in range(n):
        if i == skip:
            continue
        value = "lots" if i == bad else str(100 + i % 12 * 3 + i)
        rows.append(f"{1990 + i // 12}-{i % 12 + 1:02d}-01,{value}")
    path.write_text("month,value\n" + "\n".join(rows) + "\n")


async def test_each_dataset_problem_is_a_bad_request_saying_what_is_wrong(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repository"
    data = tmp_path / "data-files"
    data.mkdir()
    monthly_csv(data / "ok.csv", 36)
    monthly_csv(data / "short.csv", 10)
    monthly_csv(data / "gap.csv", 36, skip=30)
    monthly_csv(data / "text.csv", 36, bad=33)
    columns = {"timestamp": "month", "value": "value"}
    cases = {
        "missing-file": (
            {"path": str(data / "nope.csv"), **columns},
            f"dataset file '{data / 'nope.csv'}' does not exist",
        ),
        "missing-column": (
            {"path": str(data / "ok.csv"), "timestamp": "month", "value": "sales"},
            "column 'sales' is not in the dataset; its columns: month, value",
        ),
        "too-short": (
            {"path": str(data / "short.csv"), **columns},
            "the dataset has 10 rows; lookback needs 24",
        ),
        "not-numbers": (
            {"path": str(data / "text.csv"), **columns},
            "row 34: value 'lots' in column 'value' is not a number",
        ),
        "gap": (
            {"path": str(data / "gap.csv"), **columns},
            "1 timestamp(s) missing at frequency MS, first 1992-07-01T00:00:00",
        ),
    }
    for name, (dataset, _) in cases.items():
        forecast_model(root, f"acme/{name}", dataset, frequency="MS", method="Naive")
    settings = Settings(repository=root, data_dir=tmp_path / "data")
    async with serving(settings) as app:
        for name, (_, said) in cases.items():
            response = await app.http.get(f"/v1/models/{name}/predict")
            assert response.status_code == 400, (name, response.text)
            body = response.json()
            assert body["status"] == "BadRequest"
            assert body["error_message"].startswith(said), (name, body)


async def test_rows_appended_to_a_sqlite_table_change_the_next_forecast(tmp_path: Path) -> None:
    db = tmp_path / "sales.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE sales (day TEXT, amount REAL)")
        conn.executemany(
            "INSERT INTO sales VALUES (?, ?)",
            [(f"2026-01-{d:02d}", 10.0 + d) for d in range(1, 29)],
        )
    root = tmp_path / "repository"
    dataset = {
        "url": f"sqlite:///{db}",
        "query": "SELECT day, amount FROM sales",
        "timestamp": "day",
        "value": "amount",
    }
    forecast_model(root, "acme/sales", dataset, frequency="D", method="Naive", lookback=14)
    async with serving(Settings(repository=root, data_dir=tmp_path / "data")) as app:
        before = (await app.http.get("/v1/models/sales/predict")).json()
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO sales VALUES ('2026-01-29', 500.0)")
        after = (await app.http.get("/v1/models/sales/predict")).json()
    assert before["prediction"] == [38.0, 38.0, 38.0]  # naive: the last value, 10 + 28
    assert after["prediction"] == [500.0, 500.0, 500.0]


async def test_the_ensemble_takes_as_long_as_its_slowest_member_not_the_sum(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repository"
    for ref in ("acme/slow-a", "acme/slow-b"):
        (root / ref).parent.mkdir(parents=True, exist_ok=True)
        (root / ref).symlink_to(FIXTURES / "slow-forecast", target_is_directory=True)
    async with serving(Settings(repository=root, data_dir=tmp_path / "data")) as app:
        response = await app.http.post(
            "/v1/predict",
            json={"predictions": [{"model_name": "slow-a"}, {"model_name": "slow-b"}]},
        )
    body = response.json()
    members = [p["duration_ms"] for p in body["predictions"]]
    assert all(m >= 1000 for m in members), members
    assert body["duration_ms"] < max(members) + 500, (body["duration_ms"], members)


async def test_the_native_api_may_override_horizon_and_bring_its_own_series(api: Any) -> None:
    shorter = await api.create("demo/air-passengers", {"horizon": 3}, prefer="wait=30")
    assert shorter["status"] == "succeeded", shorter
    assert len(shorter["output"]["prediction"]) == 3
    assert len(shorter["output"]["intervals"]["95"]["upper"]) == 3
    own = await api.create(
        "demo/air-passengers-naive",
        {"horizon": 2, "series": [float(v) for v in range(1, 25)]},
        prefer="wait=30",
    )
    assert own["status"] == "succeeded", own
    assert own["output"]["prediction"] == [13.0, 14.0]  # a year before: 13, 14
    assert own["output"]["lookback"] == 24


async def test_a_parquet_dataset_is_read_like_a_csv(tmp_path: Path) -> None:
    import pandas as pd

    data = tmp_path / "series.parquet"
    months = pd.date_range("2000-01-01", periods=36, freq="MS")
    pd.DataFrame({"month": months, "value": [float(i) for i in range(36)]}).to_parquet(data)
    root = tmp_path / "repository"
    dataset = {"path": str(data), "timestamp": "month", "value": "value"}
    forecast_model(root, "acme/parquet", dataset, method="Naive")
    async with serving(Settings(repository=root, data_dir=tmp_path / "data")) as app:
        response = await app.http.get("/v1/models/parquet/predict")
    assert response.status_code == 200, response.text
    assert response.json()["prediction"] == [35.0, 35.0, 35.0]
