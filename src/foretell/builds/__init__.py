"""A model version's own Python environment, built from its requirements.txt."""

from foretell.builds.builder import Builder

__all__ = ["Builder"]
