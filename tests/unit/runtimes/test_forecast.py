"""The forecast runtime on the shipped series: the default method beats the seasonal-naive
baseline on held-out months, and bad bindings are manifest errors naming the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from foretell.errors import ManifestError
from foretell.manifest import scan_repository
from foretell.runtimes.forecast import RUNTIME, DatasetError

ROOT = Path(__file__).resolve().parents[3]
SERIES = ROOT / "examples" / "models" / "demo" / "air-passengers" / "1" / "data.csv"
HELD_OUT = 12


def mape(actual: np.ndarray, predicted: list[float]) -> float:
    return float(np.mean(np.abs(actual - np.asarray(predicted)) / actual) * 100)


def model_on(tmp_path: Path, **options: object) -> object:
    folder = tmp_path / "acme" / "m" / "1"
    folder.mkdir(parents=True)
    (folder / "foretell.yaml").write_text(
        yaml.safe_dump({"runtime": "forecast", "options": options})
    )
    (version,) = scan_repository(tmp_path).versions
    return RUNTIME.load(version)


def test_the_default_method_beats_the_seasonal_naive_baseline_on_the_last_year(
    tmp_path: Path,
) -> None:
    values = np.loadtxt(SERIES, delimiter=",", skiprows=1, usecols=1)
    history, actual = values[:-HELD_OUT].tolist(), values[-HELD_OUT:]
    dataset = {"path": str(SERIES), "timestamp": "month", "value": "passengers"}
    scores = {}
    for method in (None, "SeasonalNaive"):
        chosen = {"method": method} if method else {}  # None: the runtime's default
        model = model_on(tmp_path / str(method), dataset=dataset, season_length=12, **chosen)
        (out,) = model.predict([{"horizon": HELD_OUT, "series": history}])  # type: ignore[attr-defined]
        scores[method or "default"] = mape(actual, out["prediction"])
    # Measured: the default (AutoTheta) 3.9 % against SeasonalNaive 10.0 % (mean absolute
    # percentage error over the 12 held-out months).
    assert scores["default"] < 5.0, scores
    assert scores["default"] < scores["SeasonalNaive"] / 2, scores


def test_prediction_intervals_bracket_the_forecast(tmp_path: Path) -> None:
    dataset = {"path": str(SERIES), "timestamp": "month", "value": "passengers"}
    model = model_on(
        tmp_path, dataset=dataset, season_length=12, levels=[80, 95], frequency="MS", lookback=120
    )
    (out,) = model.predict([{"horizon": 3}])  # type: ignore[attr-defined]
    assert out["timestamps"] == [
        "1961-01-01T00:00:00",
        "1961-02-01T00:00:00",
        "1961-03-01T00:00:00",
    ]
    for level in ("80", "95"):
        band = out["intervals"][level]
        assert all(
            lo < p < hi
            for lo, p, hi in zip(band["lower"], out["prediction"], band["upper"], strict=True)
        )
    assert out["intervals"]["95"]["lower"][0] < out["intervals"]["80"]["lower"][0]


def test_a_series_too_short_for_the_method_is_a_dataset_error(tmp_path: Path) -> None:
    dataset = {"path": str(SERIES), "timestamp": "month", "value": "passengers"}
    model = model_on(tmp_path, dataset=dataset, season_length=12, method="AutoETS")
    with pytest.raises(DatasetError, match="could not fit the 4 points"):
        model.predict([{"horizon": 2, "series": [1, 2, 3, 4]}])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("options", "field", "said"),
    [
        ({}, "options.dataset", "required"),
        ({"dataset": {"path": "x.csv", "timestamp": "t"}}, "options.dataset.value", "required"),
        ({"dataset": {"timestamp": "t", "value": "v"}}, "options.dataset", "give either path"),
        (
            {"dataset": {"path": "x.csv", "timestamp": "t", "value": "v"}, "method": "Prophet"},
            "options.method",
            "'Prophet' is not one of",
        ),
        (
            {"dataset": {"path": "x.csv", "timestamp": "t", "value": "v"}, "lookback": 0},
            "options.lookback",
            "at least 1",
        ),
    ],
)
def test_a_bad_binding_is_a_manifest_error_naming_the_field(
    tmp_path: Path, options: dict[str, object], field: str, said: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        model_on(tmp_path, **options)
    assert caught.value.field == field
    assert said in caught.value.reason
