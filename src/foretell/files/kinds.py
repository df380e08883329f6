"""What a file's bytes are: its content type from magic numbers, checked against what it claims."""

from __future__ import annotations

import mimetypes
import re

import filetype

# How many leading bytes `content_type` needs to recognize any kind filetype knows.
HEAD_BYTES = 8192
OCTET_STREAM = "application/octet-stream"
# Declared types whose bytes are checked: a model that takes an image gets an image or the
# caller gets the error, not the model. (Text-like types have no magic number to check.)
_CHECKED = ("image/", "audio/", "video/", "application/pdf")
_NOUN = {"image": "an image", "audio": "audio", "video": "a video", "application": "a PDF"}
# RFC 6838 4.2's type and subtype names, lower case (127 characters each at most).
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


class KindMismatch(ValueError):
    """A declared image, audio, video or PDF type that the bytes are not."""


def content_type(head: bytes, declared: str | None, name: str) -> str:
    """What the bytes are (their first HEAD_BYTES suffice), else the declared type, else the
    type the name suggests, else application/octet-stream. A declared image/*, audio/*,
    video/* or application/pdf that the bytes are not raises KindMismatch."""
    claimed = _bare(declared)
    seen: str | None = filetype.guess_mime(head) if head else None
    if claimed is not None and _checked(claimed) and not _agree(claimed, seen, head):
        looks = f"they look like {seen}" if seen else "their kind is not recognized"
        raise KindMismatch(f"declared {claimed}, but the bytes are not {_noun(claimed)} ({looks})")
    if seen is not None:
        return seen
    if claimed is not None:
        return claimed
    by_name = mimetypes.guess_type(name, strict=False)[0]
    if by_name is None or (_checked(by_name) and not _agree(by_name, None, head)):
        return OCTET_STREAM  # a name ending .png does not make text an image
    return by_name


def _bare(declared: str | None) -> str | None:
    """`image/PNG; charset=x` → image/png; nothing, application/octet-stream or what is no
    media type → None."""
    if declared is None:
        return None
    bare = declared.split(";", 1)[0].strip().lower()
    # What is kept is served back as Content-Type and stored in a column of 255 characters,
    # where PostgreSQL refuses anything longer: a caller's type is RFC 6838's form or nothing.
    return None if bare == OCTET_STREAM or not _MEDIA_TYPE.fullmatch(bare) else bare


def _checked(kind: str) -> bool:
    return kind.startswith(_CHECKED)


def _agree(claimed: str, seen: str | None, head: bytes) -> bool:
    if claimed == "image/svg+xml":  # XML text: no magic number, but it starts with markup
        return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")
    if seen is None:
        return False
    if claimed == "application/pdf":
        return seen == claimed
    family, seen_family = claimed.split("/")[0], seen.split("/")[0]
    # One container (mp4, ogg, webm, matroska) holds either: filetype calls a .m4a video/mp4
    # and an .ogv audio/ogg, so audio and video may each be the other.
    media = {"audio", "video"}
    return family == seen_family or {family, seen_family} <= media


def _noun(kind: str) -> str:
    return _NOUN[kind.split("/")[0]]
