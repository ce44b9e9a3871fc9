"""A model wrapper for tests that keeps every input the model stage gives it, so that tests can check
the model inputs against the offline analysis without the readings carrying them."""

from __future__ import annotations

import threading

import numpy as np


class RecordingModel:
    """The wrapped model (its metadata and its outputs), keeping a copy of every ``windows`` it is given,
    in call order: v1 ``(NUM_FRAMES, NUM_BANDS)`` per update, v2 ``(batch, PATCH_FRAMES, NUM_BANDS)``
    per patch call (called on the patch thread)."""

    def __init__(self, *, model) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.inputs: list[np.ndarray] = []

    def __getattr__(self, name: str):  # the model's metadata (weight, bias, variant, pooling, ...)
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._model, name)

    def process(self, *, windows: np.ndarray):
        with self._lock:
            self.inputs.append(np.array(windows, copy=True))
        return self._model.process(windows=windows)

    @property
    def rows(self) -> int:
        """Model input rows run so far (a v1 window is one row, a v2 batch one per patch)."""
        with self._lock:
            return sum(1 if np.ndim(windows) == 2 else len(windows) for windows in self.inputs)
