"""Builder: a venv per distinct requirements.txt, layered on the server's, built once and cached.

A model's environment is `<root>/<key>/`, key a hash of its requirements text, the server's
Python version and the server's site-packages. It holds only what the model asks for beyond
what the server has: a `.pth` file appends the server's site-packages after its own, so the
model's pinned versions win and foretell itself (an installed package) is still importable by
its worker processes. The server's pip, run by the new venv's python, installs into it, and
leaves packages outside that environment alone ("Not uninstalling ..., outside environment").
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from foretell.builds.commands import CommandFailed, run
from foretell.errors import ModelLoadFailed
from foretell.manifest import REQUIREMENTS_FILE, ModelVersion

log = logging.getLogger(__name__)

COMPLETE = ".complete"  # written last: an environment without it is half-built, never used
SERVER_PTH = "_foretell_server.pth"
LOCK_POLL_S = 0.2  # how often a build waits its turn behind another process's build


@dataclass(frozen=True, slots=True)
class Server:
    """The interpreter environments are layered on: the server's, found once."""

    python: Path
    base: Path  # the real interpreter behind a venv's python: it makes the new venvs
    version: str
    site_packages: tuple[str, ...]  # where its packages are (pip among them), in its order

    @classmethod
    def of(cls, python: Path) -> Server:
        out = subprocess.run([python, "-c", _ASK], capture_output=True, check=True, text=True)
        base, version, site_packages = json.loads(out.stdout)
        return cls(python, Path(base), version, tuple(site_packages))


# What Server.of asks the server's interpreter: a venv's own site-packages (a system Python's
# several dist-packages folders), and the user's site folder where that is on its path.
_ASK = """
import json, os, site, sys
found = site.getsitepackages()
user = site.getusersitepackages()
if site.ENABLE_USER_SITE and os.path.isdir(user):
    found.insert(0, user)
print(json.dumps([getattr(sys, "_base_executable", sys.executable), sys.version, found]))
"""
# pip, run by the new venv's python (the server's pip, found through the layering), so that it
# installs there, and dies with the server as replicas do (PR_SET_PDEATHSIG, fired when the
# thread that spawned it ends: the event loop's). argv: the server's pid, then pip's arguments.
# Its signal is SIGTERM, on which it kills its whole process group (its own session): the
# processes it started (an sdist's build backend) inherit no PDEATHSIG and outlived the server.
_PIP = """
import os, runpy, signal, sys
parent = int(sys.argv.pop(1))
signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))
if sys.platform.startswith("linux"):
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)
if os.getppid() != parent:
    sys.exit("foretell: the server that started this build is gone")
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"""


class Builder:
    """Builds and caches the environments of versions that carry a requirements.txt under
    `root`: one build per distinct key, shared by every version and API process needing it."""

    def __init__(self, root: Path, *, python: Path | None = None, timeout_s: float = 900.0) -> None:
        self.root = root.absolute()  # pip runs in the version's folder: no relative paths
        self._python = python or Path(sys.executable)
        self._timeout_s = timeout_s
        self._server: Server | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    def needs_build(self, version: ModelVersion) -> bool:
        """Whether `version` asks for its own environment (its folder has requirements.txt)."""
        return version.requirements is not None

    async def build(self, version: ModelVersion, log: Callable[[str], None]) -> Path:
        """The python of `version`'s environment, built now unless already built; each line
        of the build's output goes to `log`. ModelLoadFailed with pip's reason if it fails."""
        lines: list[str] = []

        def logged(line: str) -> None:
            lines.append(line)
            log(line)

        try:
            return await self._build(version, logged)
        except CommandFailed as exc:
            reason = f"its environment could not be built: {exc.problem}"
            raise ModelLoadFailed(str(version.ref), reason, "\n".join(lines)) from None
        except (OSError, subprocess.SubprocessError) as exc:
            reason = f"its environment could not be built: {exc}"
            raise ModelLoadFailed(str(version.ref), reason, "\n".join(lines)) from None

    async def _build(self, version: ModelVersion, log: Callable[[str], None]) -> Path:
        requirements = version.path / REQUIREMENTS_FILE
        text = requirements.read_text(encoding="utf-8")
        if self._server is None:
            self._server = await asyncio.to_thread(Server.of, self._python)
        server = self._server
        key = _key(text + await asyncio.to_thread(_local_files, text, version.path), server)
        where = self.root / key
        python = where / "bin" / "python"
        async with self._locks.setdefault(key, asyncio.Lock()), _locked(self.root, key):
            if (where / COMPLETE).is_file():
                log(f"using the environment built before for these requirements: {where}")
                return python
            # Built where it will live, not renamed into place: a venv is not relocatable
            # (its scripts' shebangs name its path). A leftover without COMPLETE is a build
            # a killed process began: start again.
            await asyncio.to_thread(shutil.rmtree, where, True)
            try:
                await self._make(where, server, requirements, text, log)
            except BaseException:  # failed or canceled: nothing half-built is kept
                await asyncio.to_thread(shutil.rmtree, where, True)
                raise
        return python

    async def _make(
        self, where: Path, server: Server, requirements: Path, text: str, log: Callable[[str], None]
    ) -> None:
        log(f"building an environment for {requirements} in {where}")
        venv: list[str | Path] = [server.base, "-m", "venv", "--without-pip", where]
        await run(venv, log, timeout_s=self._timeout_s, what="python -m venv")
        site_packages = _site_packages(where)
        # `site.addsitedir`, not plain path lines: the server's own .pth files (foretell's
        # editable install among them) must be processed too.
        line = f"import site; list(map(site.addsitedir, {list(server.site_packages)!r}))\n"
        (site_packages / SERVER_PTH).write_text(line, encoding="utf-8")
        pip: list[str | Path] = [where / "bin" / "python", "-c", _PIP, str(os.getpid())]
        pip += ["install", "--progress-bar", "off", "-r", requirements.name]
        # In the version's folder: `-r other.txt` and `./wheels/x.whl` lines name its files.
        await run(pip, log, timeout_s=self._timeout_s, what="pip", cwd=requirements.parent)
        await asyncio.to_thread((where / COMPLETE).write_text, text, encoding="utf-8")
        log(f"environment ready: {where}")


def _key(requirements: str, server: Server) -> str:
    seed = f"{server.version}\n{server.site_packages}\n{requirements}"  # a tuple's repr
    return hashlib.sha256(seed.encode()).hexdigest()[:24]


# A requirements line that may name a file of the version's folder: another requirements or
# constraints file, a local project or wheel, a folder of wheels.
_LOCAL = re.compile(
    r"^\s*(-[rcef]|--(requirement|constraint|editable|find-links)|\.|/|file:)|@\s*file:"
)


def _local_files(requirements: str, folder: Path) -> str:
    """A digest of the version's folder when its requirements may name its files (their text
    alone does not say what gets installed: `-r pins.txt` in two versions may pin different
    versions), else ''. Those environments are then shared only by identical folders."""
    if not any(_LOCAL.search(line) for line in requirements.splitlines()):
        return ""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(f"\n{path.relative_to(folder)}\n".encode())
            with open(path, "rb") as file:
                digest.update(hashlib.file_digest(file, "sha256").digest())
    return f"\nfiles {digest.hexdigest()}"


def _site_packages(venv: Path) -> Path:
    """The new venv's site-packages (lib/pythonX.Y/site-packages: the server's X.Y)."""
    found = list((venv / "lib").glob("python*/site-packages"))
    if len(found) != 1:
        raise OSError(f"python -m venv made no single site-packages under {venv / 'lib'}")
    return found[0]


@contextlib.asynccontextmanager
async def _locked(root: Path, key: str) -> AsyncIterator[None]:
    """Held by one API process at a time (several may share `root`); polled, not blocked on
    a thread, so a canceled wait ends at once."""
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    fd = os.open(root / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock
