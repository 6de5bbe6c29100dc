"""The `porch` command."""
