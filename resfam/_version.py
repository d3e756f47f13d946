"""The package version: one place, read by pyproject.toml (hatch) and every CLI's --version."""
__version__ = "0.1.0"
