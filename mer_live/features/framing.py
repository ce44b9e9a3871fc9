"""Streaming framing, shared by both front-ends: feed samples as they arrive, get the frames that became
complete; feeding a signal in any chunking and then :meth:`StreamFramer.flush` gives exactly the batch
analysis of the whole signal (the front-ends' ``analyse``).

Frames are centred: the signal is preceded by ``lead`` zeros (half a frame), and frame ``i`` covers the
padded samples ``start(i) .. start(i) + length``. Only the samples that later frames still need are kept,
so memory does not grow with the stream's length.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

import numpy as np

Block = TypeVar("Block")
FEATURE_DTYPE = np.float32


class StreamFramer(Generic[Block]):
    """``lead``: zeros before sample 0; ``length``: samples per frame; ``start(indices)``: where frames
    ``indices`` ``(n,)`` start in the padded signal; ``complete(num_samples)``: how many frames are whole
    once ``num_samples`` samples have arrived; ``total(num_samples)``: the frames of a signal of that
    length, at its end (the padding past the last sample is zeros); ``compute(padded=, offsets=)``: the
    features of the frames starting at ``offsets`` within ``padded``; ``empty()``: a block of no frames."""

    def __init__(
        self,
        *,
        lead: int,
        length: int,
        start: Callable[[np.ndarray], np.ndarray],
        complete: Callable[[int], int],
        total: Callable[[int], int],
        compute: Callable[..., Block],
        empty: Callable[[], Block],
    ) -> None:
        self._lead, self._length = lead, length
        self._start, self._complete, self._total = start, complete, total
        self._compute, self._empty = compute, empty
        self.reset()

    @property
    def frames_emitted(self) -> int:
        return self._next_frame

    @property
    def samples_seen(self) -> int:
        return self._samples_seen

    def process(self, *, samples: np.ndarray) -> Block:
        """Add ``samples`` ``(num_samples,)``; return the newly complete frames."""
        samples = np.asarray(samples, dtype=FEATURE_DTYPE).reshape(-1)
        self._samples_seen += len(samples)
        self._pending = np.concatenate([self._pending, samples])
        return self._emit(upto=self._complete(self._samples_seen))

    def flush(self) -> Block:
        """End of signal: return the remaining frames, zero-padded past the last sample."""
        total = self._total(self._samples_seen)
        if total > 0:
            end = int(self._start(np.asarray([total - 1], dtype=np.int64))[0]) + self._length
            shortfall = end - (self._pending_origin + len(self._pending))
            if shortfall > 0:
                self._pending = np.concatenate([self._pending, np.zeros(shortfall, dtype=FEATURE_DTYPE)])
        return self._emit(upto=total)

    def _emit(self, *, upto: int) -> Block:
        if upto <= self._next_frame:
            return self._empty()
        offsets = np.asarray(self._start(np.arange(self._next_frame, upto, dtype=np.int64)), dtype=np.int64) - self._pending_origin
        block = self._compute(padded=self._pending, offsets=offsets)
        self._next_frame = upto
        keep_from = int(self._start(np.asarray([upto], dtype=np.int64))[0]) - self._pending_origin
        self._pending = self._pending[keep_from:].copy()
        self._pending_origin += keep_from
        return block

    def reset(self) -> None:
        """Forget everything: the next sample is sample 0 again (preceded by ``lead`` zeros)."""
        self._pending = np.zeros(self._lead, dtype=FEATURE_DTYPE)
        self._pending_origin = 0  # index in the padded signal of _pending[0]
        self._next_frame = 0
        self._samples_seen = 0

    def close(self) -> None:
        """Release buffers."""
        self._pending = np.zeros(0, dtype=FEATURE_DTYPE)
