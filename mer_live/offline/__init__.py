"""Offline analysis: ``mer-live analyze`` over files (a process pool or a Ray cluster), resumable results,
and ``mer-live report`` (matplotlib)."""
