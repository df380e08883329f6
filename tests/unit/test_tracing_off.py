"""foretell.tracing is nothing while off: no tracer and no OpenTelemetry SDK imported (its API
is imported by FastAPI itself); on with the SDK absent, a warning and no tracer rather than a
failed start; on with it, a tracer."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BUILD = """
import sys
from pathlib import Path
from foretell.api.app import create_app, front
from foretell.config import Settings
from foretell.tracing import tracing
settings = Settings(repository=Path("."), otel={otel})
front(create_app(settings))
sdk = [m for m, module in sys.modules.items() if m.startswith("opentelemetry.sdk") and module]
print(tracing(settings) is None, bool(sdk))
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_off_there_is_no_tracer_and_no_sdk_imported() -> None:
    done = run(BUILD.format(otel=False))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_on_without_the_extra_it_warns_and_traces_nothing() -> None:
    absent = "import sys\nsys.modules['opentelemetry.sdk'] = None\n"  # as if not installed
    done = run(absent + BUILD.format(otel=True))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
    assert "opentelemetry-sdk is not installed" in done.stderr


def test_on_with_the_extra_it_traces() -> None:
    done = run("import os\nos.environ['OTEL_TRACES_EXPORTER'] = 'none'\n" + BUILD.format(otel=True))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
