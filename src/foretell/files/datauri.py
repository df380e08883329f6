"""A `data:` URI's bytes (RFC 2397): base64 or percent-encoded, within the file size cap."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote, unquote_to_bytes

from foretell.files.refusal import Refused, too_large


def decode_data_uri(value: str, limit: int) -> tuple[str | None, bytes]:
    """(the declared media type or None, the bytes) of `data:[<type>][;base64],<data>`;
    Refused when it cannot be decoded or is over `limit`."""
    head, comma, payload = value[5:].partition(",")
    if not comma:
        raise Refused("data_uri_invalid", "a data: URI needs a comma before its data")
    params = [p.strip() for p in head.split(";")]
    media = params[0] if "/" in params[0] else None
    if params[-1].lower() == "base64":
        if "%" in payload:
            payload = unquote(payload)
        # Three bytes for every four characters: a URI past the cap is refused undecoded.
        if len(payload) // 4 * 3 > limit + 2:
            raise too_large(len(payload) // 4 * 3, limit, more=True)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Refused(
                "data_uri_invalid", f"the data: URI's base64 data cannot be decoded: {exc}"
            ) from None
    else:
        if len(payload) // 3 > limit:  # each byte takes one to three characters
            raise too_large(len(payload) // 3, limit, more=True)
        data = unquote_to_bytes(payload)
    if len(data) > limit:
        raise too_large(len(data), limit, more=False)
    return media, data
