"""Run a build's command (venv, pip): each line of its output to a log as it comes; a time limit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

LINE_LIMIT = 1024 * 1024  # a longer line (a progress bar pip was told not to draw) is cut


class CommandFailed(Exception):
    """A build command that exited non-zero or ran out of time; `problem` says which and why."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


async def run(
    command: Sequence[str | Path],
    log: Callable[[str], None],
    *,
    timeout_s: float,
    what: str,
    cwd: Path | None = None,
) -> None:
    """Run `command`, its stdout and stderr each line to `log`; CommandFailed naming the
    problem (pip's last ERROR line, else its last line) if it fails or outlives `timeout_s`."""
    # Unbuffered, so each line reaches the log as pip writes it, not in blocks at the end.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env["PIP_NO_INPUT"] = "1"  # a prompt (credentials for an index) would wait forever
    process = await asyncio.create_subprocess_exec(
        *map(str, command),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
        env=env,
        limit=LINE_LIMIT,
        start_new_session=True,  # its own group: pip's children (an sdist's build) die with it
    )
    lines: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            assert process.stdout is not None
            while raw := await _line(process.stdout):
                line = raw.decode(errors="replace").rstrip()
                lines.append(line)
                log(line)
            code = await process.wait()
    except TimeoutError:
        raise CommandFailed(
            f"{what} ran longer than build_timeout_s ({timeout_s:g} s) and was stopped"
        ) from None
    finally:  # timed out, or the build was canceled (the deployment stopped, the server ends)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    if code != 0:
        raise CommandFailed(_problem(lines) or f"{what} exited with status {code}")


async def _line(stream: asyncio.StreamReader) -> bytes:
    try:
        return await stream.readline()
    except ValueError:  # longer than LINE_LIMIT: what was read of it is gone; go on
        return b"[a line too long to keep]\n"


def _problem(lines: list[str]) -> str | None:
    """The line that names what went wrong: pip's last 'ERROR: ...', else the last line."""
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR: ")]
    if errors:
        return errors[-1]
    shown = [line.strip() for line in lines if line.strip()]
    return shown[-1] if shown else None
