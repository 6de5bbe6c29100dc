"""Porch: a self-hostable, end-to-end encrypted messenger."""

__version__ = "0.1.0"
