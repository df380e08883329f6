"""What a user's python model imports: the `Predictor` base class and `Input` metadata.

A python model is a folder with a `foretell.yaml` (`runtime: python`, `predictor: predict.py:Model`)
and the module it names::

    from foretell.sdk import Input, Predictor

    class Model(Predictor):
        def setup(self) -> None:
            self.prefix = "hello"          # load weights here: runs once per replica

        def predict(
            self,
            name: str = Input(description="who to greet", min_length=1),
            times: int = Input(default=1, ge=1, le=5),
            tone: str = Input(default="plain", choices=["plain", "loud"]),
        ) -> str:
            greeting = " ".join([f"{self.prefix} {name}"] * times)
            return greeting.upper() if tone == "loud" else greeting

Every parameter of `predict` needs a type annotation: the input schema is derived from them, and
inputs are validated against it before `predict` is called. The return annotation gives the output
schema; leave it out (or use `Any`) for an output that is not described.

A model that makes a file (an image, a recording) writes it anywhere it may, e.g. a temporary
folder, and returns its `pathlib.Path`, alone or inside a dict or list (`-> Path`,
`-> dict[str, list[Path]]`). The server stores each file as the prediction owner's and the
caller gets its URL (`GET /v1/files/{id}`) in place of the path; the output schema shows it as
`{"type": "string", "format": "uri"}`. A path that is not a readable file fails the prediction.

A model whose output comes piece by piece (generated tokens, progressive results) makes `predict`
a generator, or an async generator, annotated with what each piece is::

    from collections.abc import Iterator

    class Model(Predictor):
        def predict(self, prompt: str) -> Iterator[str]:
            for token in self.generate(prompt):
                yield token

Each piece is checked against the annotation and reaches the caller as it is yielded (the
record's output grows, and `GET /v1/predictions/{id}/stream` sends it). For `Iterator[str]` the
output is the pieces' concatenation, for any other `Iterator[X]` their list; a generator that
raises midway fails the prediction, keeping what it had yielded. What `predict` prints, streaming
or not, appears in the prediction's logs as each line is printed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

Choice = str | int | float | bool


class Predictor:
    """Base class of a python model: `setup()` once per replica, then `predict(**inputs)`."""

    def setup(self) -> None:
        """Prepare the model (load weights, warm caches); runs once before any prediction."""

    if TYPE_CHECKING:
        # Declared as a callable attribute so that subclasses may give `predict` any typed
        # signature without type checkers reporting an incompatible override.
        predict: Callable[..., Any]
    else:

        def predict(self, **kwargs: Any) -> Any:
            """Return the output for one input; each keyword is one typed input field."""
            raise NotImplementedError(f"{type(self).__name__} must define predict(...)")


def Input(
    default: Any = ...,
    *,
    description: str | None = None,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    choices: Sequence[Choice] | None = None,
) -> Any:
    """Describe one `predict` parameter: its default, documentation and constraints.

    Leave `default` out for a required input. `ge`/`le`/`gt`/`lt` bound numbers,
    `min_length`/`max_length` bound strings and lists, and `choices` restricts the value to a
    fixed set (an `enum` in the schema). Raises ValueError when `choices` is empty or does not
    contain `default`.
    """
    extra: dict[str, Any] | None = None
    if choices is not None:
        options = _check_choices(choices, default)
        extra = {"enum": options}
    return Field(
        default,
        description=description,
        ge=ge,
        le=le,
        gt=gt,
        lt=lt,
        min_length=min_length,
        max_length=max_length,
        json_schema_extra=extra,
    )


def _check_choices(choices: Sequence[Choice], default: Any) -> list[Choice]:
    options = list(choices)
    if not options or isinstance(choices, str):
        raise ValueError(f"Input(choices=...) must be a non-empty list of values, not {choices!r}")
    if len(set(options)) != len(options):
        raise ValueError(f"Input(choices=...) lists a value twice: {options!r}")
    if default is not ... and default not in options:
        raise ValueError(f"Input(default={default!r}) is not one of choices {options!r}")
    return options
