"""A pushed archive: every refusal names the member and writes nothing; a good one becomes the
next version, numbered under a lock."""

from __future__ import annotations

import fcntl
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from foretell.errors import ArchiveInvalid, ManifestError, UnpackedTooLarge
from foretell.manifest.archive import ArchiveLimits, publish

MANIFEST = b"runtime: python\npredictor: predict.py:Echo\n"
PREDICT = b"from foretell.sdk import Predictor\n\nclass Echo(Predictor):\n    pass\n"
LIMITS = ArchiveLimits(max_members=50, max_unpacked_bytes=64 * 1024)


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **attrs: object) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def good(prefix: str = "") -> list[tuple]:
    return [
        member(f"{prefix}foretell.yaml", MANIFEST),
        member(f"{prefix}predict.py", PREDICT),
    ]


def archive(
    tmp_path: Path, members: Iterable[tuple], *, gz: bool = True, fmt: int = tarfile.PAX_FORMAT
) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    raw = buffer.getvalue()
    path = tmp_path / ("model.tgz" if gz else "model.tar")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


def nothing_written(repo: Path) -> bool:
    model = repo / "acme" / "echo"
    return not model.exists() or not [p for p in model.iterdir() if p.name != ".lock"]


def test_a_good_archive_becomes_version_1_then_2(tmp_path: Path, repo: Path) -> None:
    first = publish(archive(tmp_path, good()), repo, "acme", "echo", LIMITS)
    second = publish(archive(tmp_path, good(), gz=False), repo, "acme", "echo", LIMITS)
    assert (first.number, second.number) == (1, 2)
    assert (repo / "acme/echo/1/foretell.yaml").read_bytes() == MANIFEST
    assert (repo / "acme/echo/2/predict.py").read_bytes() == PREDICT
    assert sorted(p.name for p in (repo / "acme/echo").iterdir()) == [".lock", "1", "2"]


def test_a_single_top_folder_is_unwrapped(tmp_path: Path, repo: Path) -> None:
    members = [member("mymodel", kind=tarfile.DIRTYPE), *good("mymodel/")]
    members.append(member("mymodel/data", kind=tarfile.DIRTYPE))
    members.append(member("mymodel/data/weights.bin", b"\x00" * 10))
    done = publish(archive(tmp_path, members), repo, "acme", "echo", LIMITS)
    assert sorted(p.name for p in done.path.iterdir()) == ["data", "foretell.yaml", "predict.py"]
    assert (done.path / "data/weights.bin").stat().st_size == 10


def test_dot_slash_names_as_tar_dash_c_makes_them(tmp_path: Path, repo: Path) -> None:
    members = [member("./", kind=tarfile.DIRTYPE), *good("./")]
    done = publish(archive(tmp_path, members), repo, "acme", "echo", LIMITS)
    assert (done.path / "foretell.yaml").is_file()


def test_the_next_number_follows_the_highest_folder(tmp_path: Path, repo: Path) -> None:
    (repo / "acme/echo/7").mkdir(parents=True)
    (repo / "acme/echo/notes").mkdir()
    assert publish(archive(tmp_path, good()), repo, "acme", "echo", LIMITS).number == 8


@pytest.mark.parametrize(
    ("bad", "member_name", "says"),
    [
        (member("../evil.py", b"x"), "../evil.py", "'..'"),
        (member("sub/../../evil.py", b"x"), "sub/../../evil.py", "'..'"),
        (member("/etc/evil", b"x"), "/etc/evil", "absolute"),
        (member("link", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), "link", "symbolic link"),
        (member("hard", kind=tarfile.LNKTYPE, linkname="foretell.yaml"), "hard", "hard link"),
        (member("dev", kind=tarfile.CHRTYPE, devmajor=1, devminor=3), "dev", "device"),
        (member("blk", kind=tarfile.BLKTYPE, devmajor=8, devminor=0), "blk", "device"),
        (member("fifo", kind=tarfile.FIFOTYPE), "fifo", "FIFO"),
        (member("bad\x01name", b"x"), "bad\\x01name", "control character"),
    ],
)
def test_a_bad_member_is_refused_by_name_before_anything_is_written(
    tmp_path: Path, repo: Path, bad: tuple, member_name: str, says: str
) -> None:
    with pytest.raises(ArchiveInvalid) as refused:
        publish(archive(tmp_path, [*good(), bad]), repo, "acme", "echo", LIMITS)
    assert refused.value.member == member_name
    assert f"'{member_name}'" in refused.value.message
    assert says in refused.value.message
    assert nothing_written(repo)
    assert not (tmp_path / "evil.py").exists()


def test_a_bad_member_after_a_good_one_still_writes_nothing(tmp_path: Path, repo: Path) -> None:
    # The good members come first: a one-pass unpack would have written them already.
    members = [*good(), member("data/a.bin", b"a" * 100), member("../x", b"x")]
    with pytest.raises(ArchiveInvalid, match=r"'\.\./x'"):
        publish(archive(tmp_path, members), repo, "acme", "echo", LIMITS)
    assert nothing_written(repo)


def test_more_members_than_the_cap_are_refused_naming_the_limit(tmp_path: Path, repo: Path) -> None:
    members = [*good(), *(member(f"f{i}.txt", b"") for i in range(60))]
    with pytest.raises(ArchiveInvalid) as refused:
        publish(archive(tmp_path, members), repo, "acme", "echo", LIMITS)
    assert refused.value.member == "f48.txt"  # the 51st
    assert "more than 50 members" in refused.value.message
    assert "max_push_members" in refused.value.message
    assert nothing_written(repo)


def test_more_unpacked_bytes_than_the_cap_are_refused_naming_the_limit(
    tmp_path: Path, repo: Path
) -> None:
    members = [*good(), member("weights.bin", b"\x00" * (LIMITS.max_unpacked_bytes + 1))]
    with pytest.raises(UnpackedTooLarge) as refused:
        publish(archive(tmp_path, members), repo, "acme", "echo", LIMITS)
    assert refused.value.member == "weights.bin"
    assert str(LIMITS.max_unpacked_bytes) in refused.value.message
    assert "max_push_unpacked_bytes" in refused.value.message
    assert nothing_written(repo)


def test_a_header_that_inflates_past_the_cap_is_cut_off(tmp_path: Path, repo: Path) -> None:
    # A pax header is read whole into memory: 1 MB of it compresses to a few KB.
    huge = member("foretell.yaml", MANIFEST, pax_headers={"comment": "x" * 1_000_000})
    with pytest.raises(UnpackedTooLarge, match="max_push_unpacked_bytes"):
        publish(archive(tmp_path, [huge]), repo, "acme", "echo", LIMITS)
    assert nothing_written(repo)


def test_no_manifest_at_the_top_is_refused(tmp_path: Path, repo: Path) -> None:
    members = [*good("a/"), member("b/readme.txt", b"hi")]
    with pytest.raises(ArchiveInvalid, match=r"no foretell\.yaml at its top.*a, b"):
        publish(archive(tmp_path, members), repo, "acme", "echo", LIMITS)
    assert nothing_written(repo)


def test_a_broken_manifest_names_the_file_and_field(tmp_path: Path, repo: Path) -> None:
    members = [member("m/foretell.yaml", b"runtime: cobol\n")]
    with pytest.raises(ManifestError) as refused:
        publish(archive(tmp_path, members), repo, "acme", "echo", LIMITS)
    assert refused.value.path == Path("m/foretell.yaml")
    assert refused.value.field == "runtime"
    assert nothing_written(repo)  # its staging folder removed too


@pytest.mark.parametrize(
    "artifact",
    [
        "/etc/passwd",
        "../../../../etc/passwd",
        "sub/../../echo/1/predict.py",
        "package:json/../../../../../etc/passwd",
    ],
)
def test_an_artifact_outside_the_pushed_folder_is_refused(
    tmp_path: Path, repo: Path, artifact: str
) -> None:
    """A pushed manifest naming a server file (absolute, or climbing out with '..', from its
    folder or a package's) as its artifact: it was published and the server loaded that file
    as the pusher's model."""
    (repo / "acme" / "echo" / "1").mkdir(parents=True)
    (repo / "acme" / "echo" / "1" / "predict.py").write_bytes(PREDICT)
    manifest = f"runtime: onnx\nartifact: {artifact}\n".encode()
    members = [member("foretell.yaml", manifest), member("sub/model.onnx", b"x")]
    with pytest.raises(ManifestError, match="is outside the pushed folder") as refused:
        publish(archive(tmp_path, members), repo, "acme", "echo", LIMITS)
    assert (refused.value.path, refused.value.field) == (Path("foretell.yaml"), "artifact")
    assert [p.name for p in (repo / "acme" / "echo").iterdir()] == ["1"]  # nothing new


@pytest.mark.parametrize("artifact", ["sub/../model.onnx", "package:json/decoder.py"])
def test_an_artifact_inside_the_pushed_folder_or_a_package_is_taken(
    tmp_path: Path, repo: Path, artifact: str
) -> None:
    manifest = f"runtime: onnx\nartifact: {artifact}\n".encode()
    members = [member("foretell.yaml", manifest), member("model.onnx", b"x"), member("sub/a")]
    assert publish(archive(tmp_path, members), repo, "acme", "echo", LIMITS).number == 1


def test_not_a_tar_is_refused(tmp_path: Path, repo: Path) -> None:
    path = tmp_path / "x.tgz"
    path.write_bytes(gzip.compress(b"this is not a tar archive" * 40))
    with pytest.raises(ArchiveInvalid, match="not a readable tar archive"):
        publish(path, repo, "acme", "echo", LIMITS)
    zipped = tmp_path / "x.zip"
    zipped.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(ArchiveInvalid, match="zip"):
        publish(zipped, repo, "acme", "echo", LIMITS)
    assert nothing_written(repo)


def test_concurrent_publishes_take_distinct_numbers(tmp_path: Path, repo: Path) -> None:
    path = archive(tmp_path, good())
    numbers: list[int] = []
    start = threading.Barrier(8)

    def push() -> None:
        start.wait()
        numbers.append(publish(path, repo, "acme", "echo", LIMITS).number)

    threads = [threading.Thread(target=push) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(1, 9))
    assert sorted(p.name for p in (repo / "acme/echo").iterdir()) == [
        ".lock",
        *sorted(str(n) for n in range(1, 9)),
    ]


def test_publishes_from_separate_processes_take_distinct_numbers(
    tmp_path: Path, repo: Path
) -> None:
    # Several API processes (--workers N) share one repository: the lock is the file's.
    path = archive(tmp_path, good())
    code = (
        "import sys; from pathlib import Path; "
        "from foretell.manifest.archive import ArchiveLimits, publish; "
        "print(publish(Path(sys.argv[1]), Path(sys.argv[2]), 'acme', 'echo', "
        "ArchiveLimits(50, 65536)).number)"
    )
    command = [sys.executable, "-c", code, str(path), str(repo)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    numbers = sorted(int(run.communicate(timeout=60)[0]) for run in runs)
    assert numbers == [1, 2, 3, 4]


def test_the_number_is_taken_under_the_models_lock(tmp_path: Path, repo: Path) -> None:
    model = repo / "acme" / "echo"
    model.mkdir(parents=True)
    numbers: list[int] = []
    with open(model / ".lock", "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as another process publishing would
        pushing = threading.Thread(
            target=lambda: numbers.append(
                publish(archive(tmp_path, good()), repo, "acme", "echo", LIMITS).number
            )
        )
        pushing.start()
        deadline = time.monotonic() + 30
        while not list(model.glob(".push-*/predict.py")) and pushing.is_alive():
            assert time.monotonic() < deadline, "the push never unpacked"
            time.sleep(0.01)
        (model / "5").mkdir()  # the version the other process took meanwhile
    pushing.join(30)
    assert numbers == [6]


def test_a_staging_folder_left_by_a_dead_push_is_removed_by_the_next(
    tmp_path: Path, repo: Path
) -> None:
    model = repo / "acme" / "echo"
    dead = model / ".push-dead"
    (dead / "data").mkdir(parents=True)
    (dead / "data" / "weights.bin").write_bytes(b"\x00" * 100)
    long_ago = time.time() - 2 * 24 * 3600
    os.utime(dead, (long_ago, long_ago))
    recent = model / ".push-recent"  # another process's, still unpacking
    recent.mkdir()

    assert publish(archive(tmp_path, good()), repo, "acme", "echo", LIMITS).number == 1

    assert not dead.exists()
    assert recent.is_dir()


def test_a_number_is_never_given_twice_even_once_its_folder_is_gone(
    tmp_path: Path, repo: Path
) -> None:
    publish(archive(tmp_path, good()), repo, "acme", "echo", LIMITS)
    second = publish(archive(tmp_path, good()), repo, "acme", "echo", LIMITS)
    shutil.rmtree(second.path)  # a running server may still serve acme/echo:2 from memory

    assert publish(archive(tmp_path, good()), repo, "acme", "echo", LIMITS).number == 3
