"""A model version's own Python environment, built from its requirements.txt."""

from foretell.builds.builder import REQUIREMENTS_FILE, Builder

__all__ = ["REQUIREMENTS_FILE", "Builder"]
