"""Model references: `owner/name` or `owner/name:version_number`."""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME_PATTERN = r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?"
REF_PATTERN = rf"^{NAME_PATTERN}/{NAME_PATTERN}(?::[1-9][0-9]{{0,8}})?$"
_REF = re.compile(REF_PATTERN)


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Names a model, and optionally one of its versions (None means the latest ready one)."""

    owner: str
    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse `owner/name[:version]`; raises ValueError naming the expected format."""
        if not _REF.match(text):
            raise ValueError(
                f"model '{text}' is not in the format owner/name or owner/name:version_number"
            )
        path, _, version = text.partition(":")
        owner, name = path.split("/")
        return cls(owner, name, int(version) if version else None)

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"

    def __str__(self) -> str:
        return self.slug if self.version is None else f"{self.slug}:{self.version}"
