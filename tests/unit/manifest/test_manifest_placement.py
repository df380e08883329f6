"""A manifest's `placement`: 'ray', 'local' or resources per replica on Ray, each mistake a
ManifestError naming the field and what Ray would make of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from foretell.errors import ManifestError
from foretell.manifest import Placement, RayOptions, load_manifest
from foretell.manifest.manifest import Manifest


def manifest(tmp_path: Path, placement: str) -> Manifest:
    (tmp_path / "predict.py").write_text("")
    (tmp_path / "foretell.yaml").write_text(
        f"runtime: python\npredictor: predict.py:Model\n{placement}\n"
    )
    return load_manifest(tmp_path)


def test_no_placement_leaves_it_to_the_server(tmp_path: Path) -> None:
    assert manifest(tmp_path, "").placement is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("placement: ray", Placement(ray=RayOptions())),
        ("placement: local", Placement(ray=None)),
        ("placement: {}", Placement(ray=None)),
        (
            "placement: {ray: {num_cpus: 0.5, num_gpus: 1, resources: {'gpu_type:A100': 1}, "
            "max_restarts: 0, strategy: pack}}",
            Placement(
                ray=RayOptions(
                    num_cpus=0.5,
                    num_gpus=1,
                    resources={"gpu_type:A100": 1},
                    max_restarts=0,
                    strategy="pack",
                )
            ),
        ),
    ],
)
def test_placements_read(tmp_path: Path, text: str, expected: Placement) -> None:
    assert manifest(tmp_path, text).placement == expected


def test_ray_defaults_are_one_cpu_three_restarts_spread() -> None:
    options = RayOptions()
    assert (options.num_cpus, options.num_gpus, options.resources) == (1.0, 0.0, {})
    assert (options.max_restarts, options.strategy) == (3, "spread")


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("placement: gpu", "placement", "'gpu' is not a placement"),
        ("placement: {ray: {resources: {CPU: 1}}}", "placement.ray.resources", "num_cpus"),
        ("placement: {ray: {resources: {'': 1}}}", "placement.ray.resources", "empty"),
        ("placement: {ray: {resources: {x: 0}}}", "placement.ray.resources", "above 0"),
        ("placement: {ray: {resources: {x: 0.00001}}}", "placement.ray.resources", "0.0001"),
        ("placement: {ray: {num_cpus: 0.00001}}", "placement.ray.num_cpus", "0.0001"),
        ("placement: {ray: {num_gpus: -1}}", "placement.ray.num_gpus", "greater than or equal"),
        ("placement: {ray: {max_restarts: -1}}", "placement.ray.max_restarts", "greater"),
        ("placement: {ray: {strategy: nope}}", "placement.ray.strategy", "'spread' or 'pack'"),
        ("placement: {ray: {gpus: 1}}", "placement.ray.gpus", "Extra inputs"),
        ("placement: ray\nisolation: thread", "isolation", "drop one"),
    ],
)
def test_mistakes_name_the_field(tmp_path: Path, text: str, field: str, says: str) -> None:
    with pytest.raises(ManifestError) as caught:
        manifest(tmp_path, text)
    assert f"field '{field}'" in caught.value.message
    assert says in caught.value.message
