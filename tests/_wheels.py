"""Tiny pure-Python wheels written by hand, for builds that must never download anything.

A wheel is a zip: the package, and a `.dist-info` folder with METADATA, WHEEL and RECORD.
`offline_pip(folder)` is the environment that makes pip install only from `folder`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path


def write_wheel(folder: Path, name: str, version: str) -> Path:
    """A wheel of distribution `name` (e.g. foretell-probe-pkg) at `version` into `folder`:
    module `name` with '-' as '_', whose `__version__` is `version`."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f'__version__ = "{version}"\n',
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: foretell-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = [
        f"{path},sha256={_digest(text.encode())},{len(text.encode())}"
        for path, text in files.items()
    ]
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def offline_pip(folder: Path) -> dict[str, str]:
    """os.environ with pip told to use no index, only the wheels in `folder` (pip reads
    PIP_<OPTION> for each of its options)."""
    return {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(folder),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
