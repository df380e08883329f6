"""Alembic migrations for the store; a package so that setuptools ships them."""
