"""Builder against real venvs and the real pip, offline: wheels written by hand (tests/_wheels.py)
and pip told to use no index. The "server" is a venv layered on the test's own, with
foretell-probe-pkg 1.0.0 installed, so a model pinning 2.0.1 must win over what the server has."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from _site import Site
from _wheels import offline_pip, write_wheel
from foretell.builds import Builder
from foretell.builds.builder import Server, _key
from foretell.errors import ModelLoadFailed
from foretell.manifest import ModelVersion, load_manifest

pytestmark = pytest.mark.anyio

PROBE = "foretell-probe-pkg"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    for version in ("1.0.0", "2.0.1"):
        write_wheel(folder, PROBE, version)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, wheels: Path) -> Path:
    """The python of a stand-in server: a venv seeing the test's packages (foretell, pip)
    after its own, with foretell-probe-pkg 1.0.0 installed."""
    where = tmp_path_factory.mktemp("server") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", where], check=True)
    (site_packages,) = (where / "lib").glob("python*/site-packages")
    ours = sysconfig.get_path("purelib")
    (site_packages / "ours.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    python = where / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", python, "install", f"{PROBE}==1.0.0"]
    subprocess.run(install, check=True, env=offline_pip(wheels), capture_output=True)
    return python


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, wheels: Path) -> Path:
    """pip installs only from `wheels` (a copy per test, free to change)."""
    for name, value in offline_pip(wheels).items():
        monkeypatch.setenv(name, value)
    return wheels


def version(root: Path, requirements: str, name: str = "probe") -> ModelVersion:
    folder = root / "models" / name
    folder.mkdir(parents=True)
    (folder / "predict.py").write_text("")
    (folder / "foretell.yaml").write_text("runtime: python\npredictor: predict.py:Model\n")
    (folder / "requirements.txt").write_text(requirements)
    return ModelVersion("acme", name, 1, folder, load_manifest(folder))


def _run(python: Path, code: str) -> str:
    return subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout


def probe_version(python: Path) -> str:
    imports = "import foretell_probe_pkg, foretell.workers"  # foretell is there too
    return _run(python, f"{imports}; print(foretell_probe_pkg.__version__)")


def freeze(python: Path) -> str:
    command = [python, "-m", "pip", "freeze", "--all"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


async def test_a_model_gets_its_pinned_version_and_the_server_keeps_its_own(
    tmp_path: Path, server: Path, offline: Path
) -> None:
    before = freeze(server)
    collected: list[str] = []
    builder = Builder(tmp_path / "environments", python=server)
    model = version(tmp_path, f"{PROBE}==2.0.1\n")
    assert builder.needs_build(model)

    python = await builder.build(model, collected.append)

    assert probe_version(python).strip() == "2.0.1"
    assert probe_version(server).strip() == "1.0.0"
    assert freeze(server) == before
    assert any("Successfully installed foretell-probe-pkg-2.0.1" in line for line in collected)


async def test_a_version_without_requirements_needs_no_build(tmp_path: Path) -> None:
    model = version(tmp_path, "")
    (model.path / "requirements.txt").unlink()
    assert not Builder(tmp_path / "environments").needs_build(model)


async def test_the_same_requirements_reuse_the_built_environment_without_pip(
    tmp_path: Path, server: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = Builder(tmp_path / "environments", python=server)
    first = await builder.build(version(tmp_path, f"{PROBE}==2.0.1\n", "one"), lambda line: None)
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels-here"))  # pip would fail
    again: list[str] = []
    other = Builder(tmp_path / "environments", python=server)  # as another API process would
    second = await other.build(version(tmp_path, f"{PROBE}==2.0.1\n", "two"), again.append)
    assert second == first
    assert probe_version(second).strip() == "2.0.1"
    assert not any("Installing" in line for line in again), again


async def test_the_same_requirements_naming_different_files_get_their_own_environments(
    tmp_path: Path, server: Path, offline: Path
) -> None:
    """`-r pins.txt` is the same text in both versions, but their pins.txt differ: the second
    must not be given the environment built for the first."""
    builder = Builder(tmp_path / "environments", python=server)
    one = version(tmp_path, "-r pins.txt\n", "one")
    (one.path / "pins.txt").write_text(f"{PROBE}==2.0.1\n")
    two = version(tmp_path, "-r pins.txt\n", "two")
    (two.path / "pins.txt").write_text(f"{PROBE}==1.0.0\n")

    first = await builder.build(one, lambda line: None)
    second = await builder.build(two, lambda line: None)

    assert probe_version(first).strip() == "2.0.1"
    assert probe_version(second).strip() == "1.0.0"


async def test_two_builds_of_the_same_requirements_at_once_share_one(
    tmp_path: Path, server: Path, offline: Path
) -> None:
    builder = Builder(tmp_path / "environments", python=server)
    logs: tuple[list[str], list[str]] = ([], [])
    built = await asyncio.gather(
        builder.build(version(tmp_path, f"{PROBE}==2.0.1\n", "one"), logs[0].append),
        builder.build(version(tmp_path, f"{PROBE}==2.0.1\n", "two"), logs[1].append),
    )
    assert built[0] == built[1]
    installed = [log for log in logs if any("Successfully installed" in x for x in log)]
    assert len(installed) == 1, logs


async def test_a_failed_build_names_the_package_keeps_the_log_and_is_not_cached(
    tmp_path: Path, server: Path, offline: Path
) -> None:
    builder = Builder(tmp_path / "environments", python=server)
    model = version(tmp_path, "nosuchpkg==9\n")
    lines: list[str] = []
    with pytest.raises(ModelLoadFailed) as failed:
        await builder.build(model, lines.append)
    assert failed.value.reason == (
        "its environment could not be built: No matching distribution found for nosuchpkg==9"
    )
    assert failed.value.model == "acme/probe:1"
    assert failed.value.traceback == "\n".join(lines)
    assert "Could not find a version that satisfies the requirement nosuchpkg==9" in lines[-2]
    # Nothing kept: once the package can be had, the same requirements build.
    assert [p.name for p in (tmp_path / "environments").iterdir() if p.is_dir()] == []
    write_wheel(offline, "nosuchpkg", "9")
    python = await builder.build(model, lambda line: None)
    assert _run(python, "import nosuchpkg; print(nosuchpkg.__version__)") == "9\n"


async def test_a_build_past_its_timeout_is_stopped_and_says_which_limit(
    tmp_path: Path, server: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = Builder(tmp_path / "environments", python=server, timeout_s=3)
    with Site.running({"/": Site.HANG}) as site:
        # pip waits on a links page that never comes (loopback: nothing leaves the machine).
        monkeypatch.setenv("PIP_FIND_LINKS", site.url("/"))
        with pytest.raises(ModelLoadFailed) as failed:
            await builder.build(version(tmp_path, f"{PROBE}==2.0.1\n"), lambda line: None)
        assert site.accepted >= 1
    assert failed.value.reason == (
        "its environment could not be built: pip ran longer than build_timeout_s (3 s) and "
        "was stopped"
    )
    assert not _pips_running(tmp_path)
    assert [p.name for p in (tmp_path / "environments").iterdir() if p.is_dir()] == []


async def test_a_canceled_build_stops_pip_and_keeps_nothing(
    tmp_path: Path, server: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = Builder(tmp_path / "environments", python=server)
    with Site.running({"/": Site.HANG}) as site:
        monkeypatch.setenv("PIP_FIND_LINKS", site.url("/"))
        model = version(tmp_path, f"{PROBE}==2.0.1\n")
        build = asyncio.create_task(builder.build(model, lambda line: None))
        while site.accepted == 0:  # pip is waiting on its links page
            assert not build.done()
            await asyncio.sleep(0.02)
        build.cancel()  # as a deployment stopped mid-build, or the server stopping, does
        with pytest.raises(asyncio.CancelledError):
            await build
    assert not _pips_running(tmp_path)
    assert [p.name for p in (tmp_path / "environments").iterdir() if p.is_dir()] == []


def _pips_running(tmp_path: Path) -> list[int]:
    """Processes still running pip for a venv under tmp_path (killed: nothing is left behind,
    whatever the test asserts of them)."""
    found = _pips(tmp_path)
    for pid in found:
        os.kill(pid, signal.SIGKILL)
    return found


def _pips(tmp_path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "install" in cmdline and str(tmp_path / "environments") in cmdline:
            found.append(int(entry.name))
    return found


def _until(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"still waiting for {what} after {timeout_s} s"
        time.sleep(0.05)


BUILDS_IN_A_PROCESS = """
import asyncio, sys
from pathlib import Path
from foretell.builds import Builder
from foretell.manifest import ModelVersion, load_manifest
folder, root, server = map(Path, sys.argv[1:])
version = ModelVersion("acme", "probe", 1, folder, load_manifest(folder))
asyncio.run(Builder(root, python=server).build(version, print))
"""


def test_pip_dies_with_the_server_that_started_it(
    tmp_path: Path, server: Path, offline: Path
) -> None:
    model = version(tmp_path, f"{PROBE}==2.0.1\n")
    with Site.running({"/": Site.HANG}) as site:
        env = offline_pip(offline) | {"PIP_FIND_LINKS": site.url("/")}  # pip waits on it
        args = [model.path, tmp_path / "environments", server]
        command = [sys.executable, "-c", BUILDS_IN_A_PROCESS, *map(str, args)]
        builder = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        try:
            _until(lambda: site.accepted >= 1, "pip to ask for its links page")
            assert _pips(tmp_path)
        finally:
            builder.kill()  # as SIGKILL takes a server: no cleanup runs
            builder.wait(10)
        _until(lambda: not _pips(tmp_path), "pip to die with its server")
        assert not _pips_running(tmp_path)


# A local project whose in-tree build backend (which pip runs in a process of its own) writes
# its pid beside it, then hangs: as a package's setup.py compiling for an hour would.
HANGING_BACKEND = """
import os, time
from pathlib import Path
def get_requires_for_build_wheel(config_settings=None):
    Path(__file__).with_name("backend.pid").write_text(str(os.getpid()))
    time.sleep(3600)
    return []
"""
HANGING_PROJECT = """
[build-system]
requires = []
build-backend = "hang"
backend-path = ["."]
[project]
name = "hangs"
version = "1"
"""


def test_a_build_backend_pip_started_dies_with_the_server_too(
    tmp_path: Path, server: Path, offline: Path
) -> None:
    """pip dies with its server (PR_SET_PDEATHSIG), but a child does not inherit that: an
    sdist's build backend pip had started was left running, reparented to init."""
    model = version(tmp_path, "./pkg\n")
    (model.path / "pkg").mkdir()
    (model.path / "pkg" / "pyproject.toml").write_text(HANGING_PROJECT)
    (model.path / "pkg" / "hang.py").write_text(HANGING_BACKEND)
    pid_file = model.path / "pkg" / "backend.pid"
    args = [model.path, tmp_path / "environments", server]
    command = [sys.executable, "-c", BUILDS_IN_A_PROCESS, *map(str, args)]
    builder = subprocess.Popen(command, env=offline_pip(offline), stdout=subprocess.DEVNULL)
    try:
        _until(pid_file.exists, "pip to start the build backend")
        _until(lambda: pid_file.read_text() != "", "the backend to write its pid")
    finally:
        builder.kill()  # as SIGKILL takes a server: no cleanup runs
        builder.wait(10)
    backend = int(pid_file.read_text())
    try:
        _until(lambda: not _alive(backend), "the build backend to die with its server", 10.0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(backend, signal.SIGKILL)
        _pips_running(tmp_path)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


async def test_a_build_waits_while_another_process_builds_the_same_requirements(
    tmp_path: Path, server: Path, offline: Path
) -> None:
    root = tmp_path / "environments"
    builder = Builder(root, python=server)
    requirements = f"{PROBE}==2.0.1\n"
    lock = root / f"{_key(requirements, Server.of(server))}.lock"
    root.mkdir()
    hold = "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
    hold += "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()"
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", hold, lock, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert other.stdin is not None
    assert other.stdout is not None
    try:
        assert await other.stdout.readline() == b"held\n"
        lines: list[str] = []
        build = asyncio.create_task(builder.build(version(tmp_path, requirements), lines.append))
        # Not finished while the other process holds the lock (however slow this machine is).
        done, _ = await asyncio.wait({build}, timeout=1.0)
        assert not done
        assert lines == []
    finally:
        other.stdin.close()
        await other.wait()
    python = await build
    assert probe_version(python).strip() == "2.0.1"
