"""The only package that imports FastAPI: app wiring, error table, wire dialects."""
