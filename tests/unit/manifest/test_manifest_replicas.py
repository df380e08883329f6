"""A manifest's `replicas`: a count is exactly that many, a range runs between min and max;
each mistake is a ManifestError naming the field and the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from foretell.errors import ManifestError
from foretell.manifest import ReplicaRange, load_manifest


def replicas(tmp_path: Path, line: str) -> ReplicaRange:
    (tmp_path / "predict.py").write_text("")
    (tmp_path / "foretell.yaml").write_text(
        f"runtime: python\npredictor: predict.py:Model\n{line}\n"
    )
    return load_manifest(tmp_path).replicas


def test_none_said_is_exactly_one(tmp_path: Path) -> None:
    assert replicas(tmp_path, "") == ReplicaRange(min=1, max=1)


def test_a_count_is_exactly_that_many(tmp_path: Path) -> None:
    found = replicas(tmp_path, "replicas: 3")
    assert (found.min, found.max, found.fixed) == (3, 3, True)


def test_a_range_keeps_its_bounds_and_timings(tmp_path: Path) -> None:
    found = replicas(tmp_path, "replicas: {min: 0, max: 4, idle_s: 30, target_wait_s: 0.5}")
    assert found == ReplicaRange(min=0, max=4, idle_s=30, target_wait_s=0.5)
    assert not found.fixed


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ("replicas: 0", "replicas", "0 replicas: a count must be 1 to 64"),
        ("replicas: 65", "replicas", "65 replicas: a count must be 1 to 64"),
        ("replicas: {min: 3, max: 2}", "replicas", "min (3) is above max (2)"),
        ("replicas: {min: 0, max: 0}", "replicas.max", "greater than or equal to 1"),
        ("replicas: {max: 65}", "replicas.max", "less than or equal to 64"),
        ("replicas: {min: 0, max: 1, idle_s: 0}", "replicas.idle_s", "greater than 0"),
        ("replicas: {max: 2, most: 3}", "replicas.most", "Extra inputs"),
    ],
)
def test_a_bad_count_or_range_names_the_field_and_limit(
    tmp_path: Path, line: str, field: str, words: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        replicas(tmp_path, line)
    assert caught.value.field == field
    assert words in caught.value.reason
