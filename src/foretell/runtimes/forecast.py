"""The `forecast` runtime: a statistical forecaster bound to a dataset, fitted at prediction time.

Each prediction reads the latest `lookback` points of the bound series, fits the method on them
and forecasts `horizon` points, so rows added to the dataset change the next forecast without a
redeploy. A request may instead bring its own `series`, and may override `horizon`.

Options (`options:` in foretell.yaml):
    dataset: where the series is —
        path: a CSV or Parquet file, relative to the version's folder or absolute; or
        url + query: any SQLAlchemy URL (a SQLite file, PostgreSQL, …) and a SELECT;
        timestamp: the timestamp column; value: the value column.
    frequency: a pandas offset alias (D, W, MS, H, …); inferred from the data if not given,
        validated against it if given.
    lookback: points read (default 100); horizon: points predicted (default 12).
    method: AutoTheta (the default: among the strongest single methods of the M3 and M4
        competitions, and fast), AutoETS, AutoARIMA, AutoCES, SeasonalNaive, Naive,
        HistoricAverage; season_length: the seasonal period (default 1). On the last 12 months
        of the shipped AirPassengers series, mean absolute percentage error: AutoCES 2.2 %,
        AutoTheta 3.9 %, AutoARIMA 4.2 %, AutoETS 7.2 %, SeasonalNaive 10.0 %.
    levels: prediction-interval levels in percent, e.g. [80, 95] (default none).

Input `{"horizon"?: int, "series"?: [number, …]}` (both optional: a GET needs no body); output
`{"prediction": [...], "timestamps": [...], "lookback": n, "intervals": {"80": {"lower",
"upper"}}}`. Dataset problems raise DatasetError, whose message says what is wrong and where.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foretell.errors import ManifestError
from foretell.manifest import ModelVersion, Signature
from foretell.manifest.manifest import MANIFEST_FILE

METHODS = (
    "AutoTheta",
    "AutoETS",
    "AutoARIMA",
    "AutoCES",
    "SeasonalNaive",
    "Naive",
    "HistoricAverage",
)
_SEASONAL = frozenset({"AutoTheta", "AutoETS", "AutoARIMA", "AutoCES", "SeasonalNaive"})
MAX_HORIZON = 1000


class DatasetError(ValueError):
    """The bound dataset cannot give the series: missing, too short, non-numeric, gappy."""


@dataclass(frozen=True, slots=True)
class Binding:
    path: Path | None
    url: str | None
    query: str | None
    timestamp: str
    value: str
    frequency: str | None
    lookback: int
    horizon: int
    method: str
    season_length: int
    levels: tuple[int, ...]


def _binding(version: ModelVersion) -> Binding:
    manifest = version.path / MANIFEST_FILE
    options = version.manifest.options
    dataset = options.get("dataset")

    def bad(field: str, reason: str) -> ManifestError:
        return ManifestError(manifest, f"options.{field}", reason)

    if not isinstance(dataset, dict):
        raise bad("dataset", "required: {path, timestamp, value} or {url, query, timestamp, value}")
    for column in ("timestamp", "value"):
        if not isinstance(dataset.get(column), str):
            raise bad(f"dataset.{column}", "required: the name of a column")
    path = dataset.get("path")
    url, query = dataset.get("url"), dataset.get("query")
    if (path is None) == (url is None):
        raise bad("dataset", "give either path (a CSV or Parquet file) or url and query")
    if url is not None and not isinstance(query, str):
        raise bad("dataset.query", "required with url: a SELECT returning the two columns")
    method = options.get("method", "AutoTheta")
    if method not in METHODS:
        raise bad("method", f"'{method}' is not one of {', '.join(METHODS)}")
    numbers = {"lookback": 100, "horizon": 12, "season_length": 1}
    values = {}
    for field, default in numbers.items():
        value = options.get(field, default)
        if not isinstance(value, int) or value < 1:
            raise bad(field, f"{value!r}: must be a whole number of at least 1")
        values[field] = value
    if values["horizon"] > MAX_HORIZON:
        raise bad("horizon", f"{values['horizon']}: at most {MAX_HORIZON}")
    levels = options.get("levels", [])
    if not isinstance(levels, list) or not all(isinstance(v, int) and 0 < v < 100 for v in levels):
        raise bad("levels", f"{levels!r}: a list of percentages between 1 and 99")
    resolved = None
    if path is not None:
        resolved = Path(path) if Path(path).is_absolute() else version.path / path
    return Binding(
        path=resolved,
        url=url,
        query=query,
        timestamp=dataset["timestamp"],
        value=dataset["value"],
        frequency=options.get("frequency"),
        lookback=values["lookback"],
        horizon=values["horizon"],
        method=method,
        season_length=values["season_length"],
        levels=tuple(levels),
    )


def _signature(binding: Binding) -> Signature:
    number = {"type": "number"}
    numbers = {"type": "array", "items": number}
    return Signature(
        input_schema={
            "type": "object",
            "properties": {
                "horizon": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_HORIZON,
                    "default": binding.horizon,
                    "description": "points to forecast",
                },
                "series": {
                    **numbers,
                    "minItems": 2,
                    "description": "forecast this series instead of the bound dataset's",
                },
            },
            "required": [],
        },
        output_schema={
            "type": "object",
            "properties": {
                "prediction": numbers,
                "timestamps": {"type": "array", "items": {"type": "string"}},
                "lookback": {"type": "integer"},
                "intervals": {"type": "object"},
            },
        },
    )


class ForecastModel:
    def __init__(self, binding: Binding) -> None:
        self._binding = binding
        self.signature = _signature(binding)

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [self._one(item) for item in batch]

    def _one(self, item: Mapping[str, Any]) -> dict[str, Any]:
        b = self._binding
        horizon = int(item.get("horizon") or b.horizon)
        series = item.get("series")
        timestamps: list[str] = []
        if series is None:
            values, stamps = _read(b)
            future = _future(stamps, b.frequency, horizon)
            timestamps = [t.isoformat() for t in future]
        else:
            values = [float(v) for v in series]
        return _forecast(b, values, horizon) | {"timestamps": timestamps, "lookback": len(values)}


def _forecast(b: Binding, values: list[float], horizon: int) -> dict[str, Any]:
    import numpy as np
    from statsforecast import models

    if b.method in _SEASONAL:
        model = getattr(models, b.method)(season_length=b.season_length)
    else:
        model = getattr(models, b.method)()
    y = np.asarray(values, dtype=np.float64)
    try:
        result = model.forecast(y=y, h=horizon, level=list(b.levels) or None)
    except (ValueError, NotImplementedError, ZeroDivisionError) as exc:
        raise DatasetError(
            f"{b.method} (season_length {b.season_length}) could not fit the {len(values)} "
            f"points it was given: {exc}"
        ) from exc
    body: dict[str, Any] = {"prediction": [float(v) for v in result["mean"]]}
    if b.levels:
        body["intervals"] = {
            str(level): {
                "lower": [float(v) for v in result[f"lo-{level}"]],
                "upper": [float(v) for v in result[f"hi-{level}"]],
            }
            for level in b.levels
        }
    return body


def _read(b: Binding) -> tuple[list[float], Any]:
    """The latest `lookback` values and their timestamps; DatasetError saying what is wrong."""
    import pandas as pd

    frame = _load(b)
    for column in (b.timestamp, b.value):
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns)) or "none"
            raise DatasetError(f"column '{column}' is not in the dataset; its columns: {found}")
    stamps = pd.to_datetime(frame[b.timestamp], errors="coerce")
    if stamps.isna().any():
        row = int(stamps.isna().to_numpy().argmax())
        bad = frame[b.timestamp].iloc[row]
        raise DatasetError(f"row {row + 1}: timestamp {bad!r} is not a date or time")
    values = pd.to_numeric(frame[b.value], errors="coerce")
    if values.isna().any():
        row = int(values.isna().to_numpy().argmax())
        bad = frame[b.value].iloc[row]
        raise DatasetError(f"row {row + 1}: value {bad!r} in column '{b.value}' is not a number")
    series = pd.Series(values.to_numpy(dtype=float), index=pd.DatetimeIndex(stamps)).sort_index()
    if len(series) < b.lookback:
        raise DatasetError(
            f"the dataset has {len(series)} rows; lookback needs {b.lookback} (lower lookback "
            "or add rows)"
        )
    window = series.iloc[-b.lookback :]
    _check_frequency(b, window.index)
    return [float(v) for v in window.to_numpy()], window.index


def _load(b: Binding) -> Any:
    import pandas as pd

    if b.path is not None:
        if not b.path.is_file():
            raise DatasetError(f"dataset file '{b.path}' does not exist")
        if b.path.suffix.lower() == ".parquet":
            return pd.read_parquet(b.path)
        return pd.read_csv(b.path)
    import sqlalchemy

    engine = sqlalchemy.create_engine(b.url or "")
    try:
        with engine.connect() as conn:
            return pd.read_sql(sqlalchemy.text(b.query or ""), conn)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)  # the driver's own message, without the SQL echoed
        reason = str(orig) if orig is not None else str(exc).splitlines()[0]
        raise DatasetError(f"the dataset query failed: {reason}") from None
    finally:
        engine.dispose()


def _check_frequency(b: Binding, index: Any) -> None:
    import pandas as pd

    frequency = b.frequency or pd.infer_freq(index)
    if frequency is None:
        raise DatasetError(
            "the timestamps have no regular frequency; set options.frequency (e.g. D, W, MS) "
            "to say which is meant"
        )
    expected = pd.date_range(index[0], index[-1], freq=frequency)
    missing = expected.difference(index)
    if len(missing):
        raise DatasetError(
            f"{len(missing)} timestamp(s) missing at frequency {frequency}, first "
            f"{missing[0].isoformat()} (between {_before(index, missing[0])} and the next row)"
        )
    if len(expected) != len(index):
        raise DatasetError(
            f"the timestamps do not follow frequency {frequency}: {len(index)} rows where "
            f"{len(expected)} were expected from {index[0].isoformat()} to "
            f"{index[-1].isoformat()}"
        )


def _before(index: Any, when: Any) -> str:
    earlier = index[index < when]
    return earlier[-1].isoformat() if len(earlier) else "the start"


def _future(index: Any, frequency: str | None, horizon: int) -> Any:
    import pandas as pd

    step = frequency or pd.infer_freq(index)
    return pd.date_range(index[-1], periods=horizon + 1, freq=step)[1:]


class ForecastRuntime:
    name = "forecast"
    in_process = False  # statsforecast's fitting holds the GIL

    def check(self, version: ModelVersion) -> None:
        _binding(version)

    def load(self, version: ModelVersion) -> ForecastModel:
        binding = _binding(version)
        # One fit on a made-up series now: statsforecast compiles its methods (numba) on first
        # use, and that ~1 s belongs to setup, not to the first caller's prediction.
        season = binding.season_length
        warm = [float(i % season) + 0.1 * i for i in range(max(4 * season, 24))]
        _forecast(binding, warm, 1)
        return ForecastModel(binding)


RUNTIME = ForecastRuntime()
