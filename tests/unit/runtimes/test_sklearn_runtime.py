"""The sklearn runtime: skops files only, trusted types enforced, stacked batches split back."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression

from foretell.errors import ManifestError, ModelLoadFailed
from foretell.manifest import ModelVersion, Repository
from foretell.runtimes import LoadedModel, get_runtime

Find = Callable[[Repository, str], ModelVersion]
Load = Callable[[ModelVersion], LoadedModel]
MakeVersion = Callable[..., ModelVersion]

REFUSED = "raw pickle is refused (it can run arbitrary code); save the model with skops.io.dump"


def sklearn_version(
    make_version: MakeVersion, artifact: str, data: bytes, **options: Any
) -> ModelVersion:
    manifest = {"runtime": "sklearn", "artifact": artifact, "options": options}
    return make_version(manifest, {artifact: data})


def test_diabetes_signature(examples: Repository, find: Find, load: Load) -> None:
    model = load(find(examples, "demo/diabetes:1"))
    features = model.signature.input_schema["properties"]["features"]
    assert features["minItems"] == 1
    assert features["items"] == {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 10,
        "maxItems": 10,
    }
    assert model.signature.input_schema["additionalProperties"] is False
    assert model.signature.output_schema["properties"] == {
        "predictions": {"type": "array", "items": {"type": "number"}}
    }


def test_diabetes_batch_equals_the_estimator_and_single_items(
    examples: Repository, find: Find, load: Load
) -> None:
    version = find(examples, "demo/diabetes:1")
    model = load(version)
    x, _ = load_diabetes(return_X_y=True)
    items = [{"features": x[i : i + 1 + i % 3].tolist()} for i in range(12)]
    batched = model.predict(items)
    singles = [model.predict([item])[0] for item in items]
    assert batched == singles
    estimator = skops.io.load(
        version.path / "model.skops", trusted=version.manifest.options["trusted_types"]
    )
    assert batched[4]["predictions"] == estimator.predict(x[4:6]).tolist()
    assert [len(o["predictions"]) for o in batched[:3]] == [1, 2, 3]
    assert model.predict([]) == []


def test_classifier_outputs_probabilities_per_class(make_version: MakeVersion, load: Load) -> None:
    x, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    estimator = LogisticRegression(max_iter=1000).fit(x, names)
    data = skops.io.dumps(estimator)
    trusted = skops.io.get_untrusted_types(data=data)
    model = load(sklearn_version(make_version, "model.skops", data, trusted_types=trusted))
    props = model.signature.output_schema["properties"]
    assert props["predictions"]["items"] == {"type": "string"}
    assert props["probabilities"]["x-classes"] == ["setosa", "versicolor", "virginica"]
    assert props["probabilities"]["items"]["maxItems"] == 3
    (output,) = model.predict([{"features": x[[0, 100]].tolist()}])
    assert output["predictions"] == ["setosa", "virginica"]
    assert np.allclose(output["probabilities"], estimator.predict_proba(x[[0, 100]]))


@pytest.mark.parametrize("artifact", ["model.pkl", "model.pickle", "model.joblib"])
def test_pickle_suffixes_are_refused(make_version: MakeVersion, artifact: str) -> None:
    version = sklearn_version(make_version, artifact, pickle.dumps({"a": 1}))
    with pytest.raises(ManifestError, match=REFUSED.replace("(", r"\(").replace(")", r"\)")):
        get_runtime("sklearn").check(version)


def test_pickle_fixture_is_refused_at_check_and_load(fixtures: Repository, find: Find) -> None:
    version = find(fixtures, "fixtures/pickle-refused:1")
    for step in (get_runtime("sklearn").check, get_runtime("sklearn").load):
        with pytest.raises(ManifestError) as caught:
            step(version)
        assert caught.value.field == "artifact"
        assert "'model.pkl': raw pickle is refused" in caught.value.reason


def test_a_pickle_renamed_to_skops_is_refused(make_version: MakeVersion) -> None:
    version = sklearn_version(make_version, "model.skops", pickle.dumps({"a": 1}))
    with pytest.raises(ManifestError, match="raw pickle is refused"):
        get_runtime("sklearn").check(version)


def test_untrusted_types_are_named(
    examples: Repository, find: Find, make_version: MakeVersion
) -> None:
    data = (find(examples, "demo/diabetes:1").path / "model.skops").read_bytes()
    version = sklearn_version(make_version, "model.skops", data, trusted_types=[])
    with pytest.raises(ModelLoadFailed) as caught:
        get_runtime("sklearn").load(version)
    assert "types not listed in options.trusted_types: ['sklearn.tree._tree.Tree']" in str(
        caught.value
    )
    assert caught.value.model == "tmp/model:1"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"trusted_types": "sklearn.tree._tree.Tree"}, "options.trusted_types"),
        ({"trusted_types": [1]}, "options.trusted_types"),
        ({"trusted": []}, "options.trusted"),
    ],
)
def test_invalid_options_are_manifest_errors(
    examples: Repository,
    find: Find,
    make_version: MakeVersion,
    options: dict[str, Any],
    field: str,
) -> None:
    data = (find(examples, "demo/diabetes:1").path / "model.skops").read_bytes()
    version = sklearn_version(make_version, "model.skops", data, **options)
    with pytest.raises(ManifestError) as caught:
        get_runtime("sklearn").check(version)
    assert caught.value.field == field


def test_rows_of_the_wrong_width_are_named(examples: Repository, find: Find, load: Load) -> None:
    model = load(find(examples, "demo/diabetes:1"))
    with pytest.raises(ValueError, match=r"item 1: 'features' has shape \[1, 3\]"):
        model.predict([{"features": [[0.0] * 10]}, {"features": [[1, 2, 3]]}])
    with pytest.raises(ValueError, match="item 0: input 'features' is missing"):
        model.predict([{"rows": [[0.0] * 10]}])


def test_a_sklearn_worker_never_imports_torch_yet_the_shim_stays_importable() -> None:
    """In a fresh interpreter, as a worker is: loading demo/diabetes must not drag torch in
    through skops' walk of sklearn's packages, and the block must not outlive the import."""
    root = Path(__file__).resolve().parents[3]
    script = """
import sys
from pathlib import Path
from foretell.manifest import scan_repository
from foretell.runtimes import get_runtime
(version,) = [v for v in scan_repository(Path("examples/models")).versions if v.name == "diabetes"]
model = get_runtime("sklearn").load(version)
assert len(model.predict([{"features": [[0.0] * 10]}])) == 1
print("torch" in sys.modules)
try:
    import sklearn.externals.array_api_compat.torch
except ImportError as exc:  # halted: the block outlived the import; else torch is absent
    print("halted" if "halted" in str(exc) else "absent")
else:
    print("importable")
"""
    ran = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    torch_installed = importlib.util.find_spec("torch") is not None
    assert ran.stdout.split() == ["False", "importable" if torch_installed else "absent"]
