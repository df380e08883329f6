"""Runtimes load one kind of model and predict batches; the registry picks one by name, lazily."""

from foretell.runtimes.base import LoadedModel, Runtime, WithFiles
from foretell.runtimes.registry import RUNTIME_NAMES, get_runtime

__all__ = ["RUNTIME_NAMES", "LoadedModel", "Runtime", "WithFiles", "get_runtime"]
