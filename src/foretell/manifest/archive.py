"""A pushed model folder: check every member of its tar, unpack it, number it as a new version.

`publish` refuses an archive before anything of it is written: a member whose name is absolute,
climbs out with '..' or holds a control character, a link, a device or FIFO, more members or
more unpacked bytes than the limits, no foretell.yaml at the top (a single top folder, as
`tar czf m.tgz mymodel/` makes, is unwrapped). Then it unpacks into a hidden staging folder
beside the versions (`.push-<random>`: the repository scan skips dot-names), reads its manifest
there, and renames it to the next version number under a lock on `<owner>/<name>/.lock`, so two
pushes, from one process or several, never take the same number. A failure removes the staging
folder. Blocking: callers run it on a thread."""

from __future__ import annotations

import copy
import fcntl
import gzip
import os
import re
import secrets
import shutil
import sys
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

import yaml

from foretell.domain.model import NAME_PATTERN
from foretell.errors import ArchiveInvalid, ForetellError, ManifestError, UnpackedTooLarge
from foretell.manifest.manifest import MANIFEST_FILE, PACKAGE, load_manifest

LOCK_FILE = ".lock"
STAGING_PREFIX = ".push-"
# A staging folder untouched this long was left by a process that died mid-push: removed by
# the next push of that model. (One being unpacked changes as each member lands.)
STALE_STAGING_S = 24 * 3600
_NAME = re.compile(rf"^{NAME_PATTERN}$")
_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
_GZIP = b"\x1f\x8b"
_ZIP = b"PK\x03\x04"
# Tar's own bytes around the members' contents: a 512-byte header and up to 511 of padding
# each, and long names (pax or GNU headers) before some; the stream is cut off past the
# unpacked cap plus this, so a header that claims little cannot inflate to much (a pax bomb).
_HEADER_ALLOWANCE = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """How much one archive may hold, with the settings that say so (named in refusals)."""

    max_members: int
    max_unpacked_bytes: int
    members_setting: str = "max_push_members"
    unpacked_setting: str = "max_push_unpacked_bytes"

    @property
    def max_stream_bytes(self) -> int:
        return self.max_unpacked_bytes + _HEADER_ALLOWANCE * (self.max_members + 4)


@dataclass(frozen=True, slots=True)
class Published:
    """A version written into the repository from an archive."""

    owner: str
    name: str
    number: int
    path: Path


def publish(archive: Path, root: Path, owner: str, name: str, limits: ArchiveLimits) -> Published:
    """Unpack the tar (plain or gzip) at `archive` as the next version of `owner/name` under
    the repository `root`. Raises ArchiveInvalid or UnpackedTooLarge before anything is written,
    or ManifestError (its path relative to the archive's top) once unpacked; then nothing is
    left behind."""
    for field, value in (("owner", owner), ("name", name)):
        if not _NAME.match(value):
            raise ValueError(f"{field} '{value}' does not match {NAME_PATTERN}")
    top = _top(archive, limits)
    model_dir = root / owner / name
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_stale(model_dir, time.time() - STALE_STAGING_S)
    staging = model_dir / f"{STAGING_PREFIX}{secrets.token_hex(8)}"
    staging.mkdir()
    try:
        _unpack(archive, staging, top, limits)
        try:
            _own_artifact(staging, _artifact_named(staging))  # before load_manifest looks
            load_manifest(staging)
        except ManifestError as exc:  # the caller's own path, not the server's staging folder
            shown = PurePosixPath(top, MANIFEST_FILE) if top else PurePosixPath(MANIFEST_FILE)
            raise ManifestError(Path(shown), exc.field, exc.reason) from None
        number = _commit(staging, model_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Published(owner, name, number, model_dir / str(number))


def _own_artifact(folder: Path, artifact: str | None) -> None:
    """A pushed version's artifact is its own: a path inside its folder, or a file an installed
    package ships (`package:mod/path`, as demo/minilm's). A repository on disk may name any
    file (its operator put it there), but a push naming an absolute path or one climbing out
    with '..' served a file of the server's (another owner's model, say) as the pusher's."""
    if artifact is None:
        return
    inside = folder.resolve()
    if artifact.startswith(PACKAGE):
        inner = PurePosixPath(artifact.removeprefix(PACKAGE))
        outside = inner.is_absolute() or ".." in inner.parts
    else:
        outside = not (inside / artifact).resolve().is_relative_to(inside)
    if outside:
        raise ManifestError(
            folder / MANIFEST_FILE,
            "artifact",
            f"'{_shown(artifact)}' is outside the pushed folder; a pushed version's artifact "
            "is a file or folder of its own, named relative to its foretell.yaml, or "
            "package:<module>/<path> of an installed package",
        )


def _artifact_named(folder: Path) -> str | None:
    """The `artifact` its foretell.yaml names, read before load_manifest checks that it exists
    (which would say whether a server file does); None if unreadable: load_manifest says why."""
    try:
        raw = yaml.safe_load((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    value = raw.get("artifact") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def next_number(model_dir: Path) -> int:
    """One past the highest version folder of a model (1 for none); take it under the lock."""
    numbers = [int(p.name) for p in model_dir.iterdir() if _VERSION.match(p.name)]
    return max(numbers, default=0) + 1


def remove_stale(model_dir: Path, before: float) -> list[Path]:
    """Remove the staging folders of `model_dir` last changed before `before` (a time.time());
    those removed."""
    stale = []
    for folder in model_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            if folder.is_dir() and folder.stat().st_mtime < before:
                shutil.rmtree(folder, ignore_errors=True)
                stale.append(folder)
        except FileNotFoundError:  # another push removed it meanwhile
            continue
    return stale


def _commit(staging: Path, model_dir: Path) -> int:
    # flock, not a lock in this process: the API processes of `--workers N` share the folder.
    with open(model_dir / LOCK_FILE, "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        # The lock file also keeps the last number pushed: a number is never given twice, even
        # after its folder was removed. A server still serving the removed version (its
        # watcher not yet told, or off) would take the new folder for the old version changed
        # on disk, keep serving the old, and answer the push with the old one's record.
        lock.seek(0)
        last = lock.read().strip()
        number = max(next_number(model_dir), int(last) + 1 if last.isdigit() else 1)
        os.rename(staging, model_dir / str(number))  # one file system: atomic
        lock.truncate(0)
        lock.write(f"{number}\n")
        return number


def _top(archive: Path, limits: ArchiveLimits) -> str:
    """Check every member; the folder that holds foretell.yaml: '' (the archive's top) or its
    single top folder's name."""
    files: set[PurePosixPath] = set()
    tops: set[str] = set()
    with _opened(archive, limits) as tar:
        for member in _checked(tar, limits):
            path = PurePosixPath(member.name)
            if path.parts:
                tops.add(path.parts[0])
            if member.isreg():
                files.add(path)
    if PurePosixPath(MANIFEST_FILE) in files:
        return ""
    if len(tops) == 1 and PurePosixPath(next(iter(tops)), MANIFEST_FILE) in files:
        return next(iter(tops))
    found = ", ".join(sorted(_shown(t) for t in tops)[:10]) or "nothing"
    raise ArchiveInvalid(
        None,
        f"no {MANIFEST_FILE} at its top, nor in a single top folder (found at the top: "
        f"{found}); pack the model's folder itself, e.g. tar czf model.tgz -C DIR .",
    )


def _checked(tar: tarfile.TarFile, limits: ArchiveLimits) -> Iterator[tarfile.TarInfo]:
    """The archive's members, each checked as it is read, and their count and sizes."""
    total = 0
    for count, member in enumerate(tar, 1):
        if count > limits.max_members:
            raise ArchiveInvalid(
                _shown(member.name),
                f"more than {limits.max_members} members, the limit ({limits.members_setting})",
            )
        _check(member)
        total += member.size if member.isreg() else 0
        if total > limits.max_unpacked_bytes:
            raise UnpackedTooLarge(
                _shown(member.name), total, limits.max_unpacked_bytes, limits.unpacked_setting
            )
        yield member


def _check(member: tarfile.TarInfo) -> None:
    name = member.name
    shown = _shown(name)
    if _CONTROL.search(name):
        raise ArchiveInvalid(shown, "its name holds a NUL or control character")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise ArchiveInvalid(shown, "an absolute path; members must be relative to the folder")
    if ".." in path.parts:
        raise ArchiveInvalid(shown, "'..' would place it outside the model's folder")
    if member.issym():
        raise ArchiveInvalid(
            shown,
            f"a symbolic link (to '{_shown(member.linkname)}'); links are refused: pack the "
            "file itself (tar -h follows links)",
        )
    if member.islnk():
        raise ArchiveInvalid(
            shown, f"a hard link (to '{_shown(member.linkname)}'); links are refused"
        )
    if member.ischr() or member.isblk():
        raise ArchiveInvalid(shown, "a device file; only files and folders are taken")
    if member.isfifo():
        raise ArchiveInvalid(shown, "a FIFO; only files and folders are taken")
    if member.issparse():
        raise ArchiveInvalid(shown, "a sparse file; pack it without --sparse")
    if not (member.isreg() or member.isdir()):
        raise ArchiveInvalid(shown, f"an entry of tar type {member.type!r}; only files and folders")


def _unpack(archive: Path, staging: Path, top: str, limits: ArchiveLimits) -> None:
    """Extract into `staging`, `top` unwrapped, every member checked again as it comes."""

    def placed(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        parts = PurePosixPath(member.name).parts[1 if top else 0 :]
        if not parts:  # the archive's top folder itself: `staging` is it
            return None
        moved = copy.copy(member)
        moved.name = "/".join(parts)
        return _DATA_FILTER(moved, dest)

    with _opened(archive, limits) as tar:
        members = _checked(tar, limits)
        if sys.version_info >= (3, 11, 4):  # tarfile's own guard too, the 'data' filter
            tar.extractall(staging, members=members, filter=placed)
        else:  # no extraction filters before 3.11.4: _check is the guard
            for member in members:
                if (moved := placed(member, str(staging))) is not None:
                    tar.extract(moved, staging)


def _no_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    return member


_DATA_FILTER: Callable[[tarfile.TarInfo, str], tarfile.TarInfo] = (
    tarfile.data_filter if sys.version_info >= (3, 11, 4) else _no_filter
)


@contextmanager
def _opened(archive: Path, limits: ArchiveLimits) -> Iterator[tarfile.TarFile]:
    """The archive as a tar stream, read once front to back, its decompressed bytes capped."""
    with open(archive, "rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic == _ZIP:
            raise ArchiveInvalid(
                None, "a zip archive; send a tar, plain or gzip (tar czf model.tgz -C DIR .)"
            )
        source: _Readable = gzip.GzipFile(fileobj=raw) if magic[:2] == _GZIP else raw
        capped = _Capped(source, limits)
        try:
            with tarfile.open(fileobj=capped, mode="r|") as tar:  # type: ignore[call-overload]
                yield tar
        except ForetellError:
            raise
        except tarfile.FilterError as exc:  # _check refuses these first; never trusted alone
            raise ArchiveInvalid(_shown(exc.tarinfo.name), str(exc)) from None
        except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise ArchiveInvalid(
                None, f"not a readable tar archive, plain or gzip: {exc or type(exc).__name__}"
            ) from None


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Capped:
    """A reader that refuses to give more than the limits' stream bytes."""

    def __init__(self, source: _Readable, limits: ArchiveLimits) -> None:
        self.source = source
        self.limits = limits
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.read_bytes += len(data)
        if self.read_bytes > self.limits.max_stream_bytes:
            raise UnpackedTooLarge(
                None,
                self.read_bytes,
                self.limits.max_unpacked_bytes,
                self.limits.unpacked_setting,
            )
        return data


def _shown(name: str) -> str:
    """A member's name as an error repeats it: control characters escaped, never raw."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", name)
