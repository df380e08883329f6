"""Caller files in (uploads, URLs through the address guard, data URIs) and model files out."""

from foretell.files.service import FileService

__all__ = ["FileService"]
