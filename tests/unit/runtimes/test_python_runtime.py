"""The python runtime: schemas from `predict` annotations, setup and predict failures as data."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from foretell.errors import InvalidInput, ManifestError, ModelLoadFailed
from foretell.manifest import ModelVersion, Repository
from foretell.manifest.schema import InputValidator
from foretell.runtimes import LoadedModel, get_runtime
from foretell.workers.child import run_batch

Find = Callable[[Repository, str], ModelVersion]
Load = Callable[[ModelVersion], LoadedModel]
MakeVersion = Callable[..., ModelVersion]


def python_version(make_version: MakeVersion, source: str, **files: str) -> ModelVersion:
    manifest = {"runtime": "python", "predictor": "predict.py:Model"}
    return make_version(manifest, {"predict.py": textwrap.dedent(source), **files})


def test_echo_returns_its_input_with_defaults(fixtures: Repository, find: Find, load: Load) -> None:
    model = load(find(fixtures, "fixtures/echo:1"))
    assert model.predict([{"text": "hi"}, {"text": "yo", "n": 3}]) == [
        {"text": "hi", "n": 1},
        {"text": "yo", "n": 3},
    ]
    n = model.signature.input_schema["properties"]["n"]
    assert (n["default"], n["minimum"], n["maximum"]) == (1, 1, 10)
    assert model.signature.output_schema["required"] == ["text", "n"]


def test_typed_inputs_schema_has_bounds_defaults_and_enums(
    fixtures: Repository, find: Find, load: Load
) -> None:
    schema = load(find(fixtures, "fixtures/typed-inputs:1")).signature.input_schema
    props = schema["properties"]
    assert schema["required"] == ["name"]
    assert schema["additionalProperties"] is False
    assert (props["name"]["minLength"], props["name"]["maxLength"]) == (2, 8)
    assert props["name"]["description"] == "a short name"
    assert (props["count"]["minimum"], props["count"]["maximum"]) == (1, 10)
    assert (props["ratio"]["exclusiveMinimum"], props["ratio"]["exclusiveMaximum"]) == (0, 1)
    assert (props["color"]["enum"], props["color"]["default"]) == (["red", "green", "blue"], "red")
    assert (props["level"]["enum"], props["level"]["type"]) == ([1, 2, 3], "integer")
    assert props["loud"] == {"default": False, "title": "Loud", "type": "boolean"}
    assert props["weights"]["default"] == [1.0, 2.0]
    assert props["weights"]["items"] == {"type": "number"}


def test_inputs_are_validated_with_each_field_named(
    fixtures: Repository, find: Find, load: Load
) -> None:
    model = load(find(fixtures, "fixtures/typed-inputs:1"))
    with pytest.raises(InvalidInput) as caught:
        model.predict([{"name": "a", "color": "pink", "ratio": 1, "extra": 0}])
    # under `input`, as the server's own schema check names them
    assert {e["loc"][0] for e in caught.value.errors} == {"input"}
    assert sorted(e["loc"][1] for e in caught.value.errors) == ["color", "extra", "name", "ratio"]


def test_a_validator_the_schema_cannot_show_refuses_input_as_json_safe_data(
    make_version: MakeVersion,
) -> None:
    """An AfterValidator is invisible to the JSON schema, so the worker refuses the input: as
    the caller's error, and as plain JSON (pydantic puts the ValueError itself in ctx)."""
    version = python_version(
        make_version,
        """
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
        """,
    )
    model = get_runtime("python").load(version)
    good, bad = run_batch(model, [{"n": 2}, {"n": 3}])
    assert good.output == 2
    assert bad.output is None
    assert bad.refused == [
        {
            "type": "value_error",
            "loc": ["input", "n"],
            "msg": "Value error, must be even",
            "input": 3,
            "ctx": {"error": "must be even"},
        }
    ]
    assert bad.error == "invalid input: input.n: Value error, must be even"
    assert orjson.loads(orjson.dumps(bad.refused)) == bad.refused


def test_mutable_defaults_are_fresh_for_each_prediction(
    fixtures: Repository, find: Find, load: Load
) -> None:
    model = load(find(fixtures, "fixtures/typed-inputs:1"))
    first, second = model.predict([{"name": "ab"}, {"name": "cd", "weights": [3]}])
    assert first == {
        "name": "ab",
        "count": 5,
        "ratio": 0.5,
        "color": "red",
        "level": 2,
        "loud": False,
        "weights": [1.0, 2.0],
    }
    assert second["weights"] == [3.0]


def test_every_schema_compiles_into_the_input_validator(
    fixtures: Repository, examples: Repository, find: Find, load: Load
) -> None:
    text_stats = load(find(examples, "demo/text-stats:1"))
    validator = InputValidator(text_stats.signature.input_schema)
    assert validator.validate({"text": "a b"}) == {"text": "a b", "top_k": 3, "case": "lower"}
    typed = load(find(fixtures, "fixtures/typed-inputs:1")).signature.input_schema
    with pytest.raises(InvalidInput, match="color"):
        InputValidator(typed).validate({"name": "abc", "color": "pink"})


def test_text_stats_counts_words(examples: Repository, find: Find, load: Load) -> None:
    model = load(find(examples, "demo/text-stats:1"))
    outputs = model.predict(
        [
            {"text": "The cat and the hat. The end"},
            {"text": "A a b", "case": "preserve", "top_k": 1},
        ]
    )
    assert outputs[0] == {
        "words": 7,
        "characters": 28,
        "top_words": [
            {"word": "the", "count": 3},
            {"word": "cat", "count": 1},
            {"word": "and", "count": 1},
        ],
    }
    assert outputs[1]["top_words"] == [{"word": "A", "count": 1}]
    case = model.signature.input_schema["properties"]["case"]
    assert (case["enum"], case["default"]) == (["lower", "preserve"], "lower")
    assert model.signature.output_schema["$defs"]["WordCount"]["required"] == ["word", "count"]


def test_sleeps_logs_to_stdout(
    fixtures: Repository, find: Find, load: Load, capsys: pytest.CaptureFixture[str]
) -> None:
    model = load(find(fixtures, "fixtures/sleeps:1"))
    assert model.predict([{"seconds": 0}]) == [0.0]
    assert capsys.readouterr().out == "sleeping 0.0 s\n"


def test_predict_errors_propagate(fixtures: Repository, find: Find, load: Load) -> None:
    model = load(find(fixtures, "fixtures/raises-in-predict:1"))
    with pytest.raises(ValueError, match="boom: cannot predict"):
        model.predict([{"text": "x"}])


def test_setup_errors_fail_the_load(fixtures: Repository, find: Find, load: Load) -> None:
    with pytest.raises(ModelLoadFailed) as caught:
        load(find(fixtures, "fixtures/raises-in-setup:1"))
    assert caught.value.model == "fixtures/raises-in-setup:1"
    assert caught.value.reason == (
        "RaisesInSetup.setup() raised RuntimeError: setup exploded (at predict.py:8)"
    )


@pytest.mark.parametrize("name", ["slow-setup", "exits-in-predict"])
def test_other_fixtures_load(fixtures: Repository, find: Find, load: Load, name: str) -> None:
    model = load(find(fixtures, f"fixtures/{name}:1"))
    assert len(model.signature.input_schema["required"]) == 1


def test_missing_annotation_names_the_parameter(make_version: MakeVersion) -> None:
    version = python_version(
        make_version,
        """
        from foretell.sdk import Predictor

        class Model(Predictor):
            def predict(self, text: str, count) -> str:
                return text
        """,
    )
    with pytest.raises(ModelLoadFailed, match="parameter 'count' has no type annotation"):
        get_runtime("python").load(version)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("raise ImportError('no torch')", r"importing predict.py raised ImportError: no torch"),
        ("class Other: pass", r"defines no class 'Model'; classes there: \['Other'\]"),
        (
            "class Model:\n    def predict(self, *texts: str) -> str: ...",
            "parameter 'texts' must be a named, typed parameter",
        ),
        (
            "from foretell.sdk import Input\n"
            "class Model:\n"
            "    def predict(self, k: int = Input(choices=['a'])) -> int: ...",
            "choice 'a' of parameter 'k' is not a <class 'int'>",
        ),
        (
            "class Model:\n    def predict(self, x: 'Missing') -> int: ...",
            "annotations cannot be resolved: name 'Missing' is not defined",
        ),
    ],
)
def test_unusable_predictors_fail_to_load(
    make_version: MakeVersion, source: str, reason: str
) -> None:
    with pytest.raises(ModelLoadFailed, match=reason):
        get_runtime("python").load(python_version(make_version, source))


@pytest.mark.parametrize(
    ("manifest", "field"),
    [
        ({"predictor": "predict.py"}, "predictor"),
        ({"predictor": "missing.py:Model"}, "predictor"),
        ({"predictor": "../predict.py:Model"}, "predictor"),
        ({"predictor": "predict.py:Model", "options": {"x": 1}}, "options"),
    ],
)
def test_bad_predictor_references_are_manifest_errors(
    make_version: MakeVersion, manifest: dict[str, Any], field: str
) -> None:
    version = make_version({"runtime": "python", **manifest}, {"predict.py": ""})
    with pytest.raises(ManifestError) as caught:
        get_runtime("python").check(version)
    assert caught.value.field == field


@pytest.fixture
def clean_imports() -> Iterator[None]:
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


@pytest.mark.usefixtures("clean_imports")
def test_sibling_modules_are_importable(make_version: MakeVersion, load: Load) -> None:
    version = python_version(
        make_version,
        """
        import numpy as np
        from foretell_sibling_helper import double

        class Model:
            def predict(self, x: float):
                return {"doubled": np.float64(double(x)), "grid": np.zeros((2, 2))}
        """,
        **{"foretell_sibling_helper.py": "def double(x):\n    return 2 * x\n"},
    )
    model = load(version)
    assert model.predict([{"x": 1.5}]) == [{"doubled": 3.0, "grid": [[0.0, 0.0], [0.0, 0.0]]}]
    assert model.signature.output_schema == {}


def test_outputs_must_match_the_return_annotation(make_version: MakeVersion, load: Load) -> None:
    version = python_version(
        make_version,
        """
        class Model:
            def predict(self, x: int) -> list[int]:
                return ["a"] if x else [x]
        """,
    )
    model = load(version)
    assert model.predict([{"x": 0}]) == [[0]]
    assert model.signature.output_schema == {"type": "array", "items": {"type": "integer"}}
    with pytest.raises(ValueError, match="returned a list that does not match its return"):
        model.predict([{"x": 1}])
