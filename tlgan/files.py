"""Small file helpers: every write goes to a temp file first, then an atomic rename."""

from __future__ import annotations

from axes.artifact import atomic_path, write_bytes_atomic, write_json_atomic

__all__ = ["atomic_path", "write_bytes_atomic", "write_json_atomic"]
