"""A single-producer single-consumer ring buffer of audio frames, preallocated and lock-free.

The producer is the audio callback (or a file/demo feeder thread); the consumer is the worker thread.
Synchronisation is by index arithmetic only: the producer alone advances ``written`` (after copying the
data in), the consumer alone advances ``read`` (after copying the data out). Both are monotonically
increasing integers; a position's slot is ``index % capacity``. Each side reads the other's counter
once per call, and a stale value is always safe (the producer may see less free space, the consumer
fewer frames, never data that is being overwritten). Under CPython assigning an int attribute is atomic.

When the consumer falls behind and the buffer is full, :meth:`write` keeps what is already buffered and
drops the newest frames, counting them in ``dropped``: the producer never touches the consumer's index.
"""

from __future__ import annotations

import numpy as np

SAMPLE_DTYPE = np.float32


class RingBuffer:
    """``capacity`` frames of ``channels`` float32 samples, stored ``(capacity, channels)``."""

    def __init__(self, *, capacity: int, channels: int) -> None:
        if capacity <= 0 or channels <= 0:
            raise ValueError(f"capacity and channels must be positive, got {capacity} and {channels}")
        self._buffer = np.zeros((capacity, channels), dtype=SAMPLE_DTYPE)
        self._capacity = capacity
        self._channels = channels
        self._written = 0  # advanced by the producer only
        self._read = 0  # advanced by the consumer only
        self._dropped = 0  # producer only
        self._overruns = 0  # producer only: writes that had to drop frames

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def written(self) -> int:
        """Frames ever accepted by :meth:`write`."""
        return self._written

    @property
    def dropped(self) -> int:
        """Frames the producer had to drop because the buffer was full."""
        return self._dropped

    @property
    def overruns(self) -> int:
        """How many writes found the buffer too full and dropped frames."""
        return self._overruns

    def available(self) -> int:
        """Frames the consumer can read now."""
        return self._written - self._read

    def free(self) -> int:
        """Frames the producer can write now without dropping."""
        return self._capacity - (self._written - self._read)

    def write(self, *, frames: np.ndarray) -> int:
        """Producer: copy ``frames`` ``(num_frames, channels)`` in; returns how many were accepted.

        Allocates no sample buffers (only the small slice views NumPy makes for the copies), takes no
        locks and does no I/O: safe in an audio callback.
        """
        count = frames.shape[0]
        space = self._capacity - (self._written - self._read)
        accepted = count if count <= space else space
        if accepted < count:
            self._dropped += count - accepted
            self._overruns += 1
        if accepted <= 0:
            return 0
        start = self._written % self._capacity
        first = self._capacity - start
        if accepted <= first:
            np.copyto(self._buffer[start : start + accepted], frames[:accepted])
        else:
            np.copyto(self._buffer[start:], frames[:first])
            np.copyto(self._buffer[: accepted - first], frames[first:accepted])
        self._written += accepted  # publish only after the data is in place
        return accepted

    def read_into(self, *, out: np.ndarray) -> int:
        """Consumer: copy up to ``len(out)`` frames into ``out`` ``(n, channels)``; returns the count."""
        count = min(out.shape[0], self._written - self._read)
        if count <= 0:
            return 0
        start = self._read % self._capacity
        first = self._capacity - start
        if count <= first:
            np.copyto(out[:count], self._buffer[start : start + count])
        else:
            np.copyto(out[:first], self._buffer[start:])
            np.copyto(out[first:count], self._buffer[: count - first])
        self._read += count  # release the slots only after the data is out
        return count

    def read(self, *, max_frames: int) -> np.ndarray:
        """Consumer: the next up to ``max_frames`` frames as a new ``(n, channels)`` array."""
        out = np.empty((max(0, min(max_frames, self.available())), self._channels), dtype=SAMPLE_DTYPE)
        count = self.read_into(out=out)
        return out[:count]

    def reset(self) -> None:
        """Forget everything (only while neither side is running)."""
        self._written = 0
        self._read = 0
        self._dropped = 0
        self._overruns = 0


_COUNTERS = ("_written", "_read", "_dropped", "_overruns", "events")
_COUNTER_DTYPE = np.int64
_COUNTER_BYTES = len(_COUNTERS) * np.dtype(_COUNTER_DTYPE).itemsize


def _shared_counter(index: int) -> property:
    def get(self: SharedRingBuffer) -> int:
        return int(self._counters[index])

    def set(self: SharedRingBuffer, value: int) -> None:  # noqa: A001 - property protocol
        self._counters[index] = value

    return property(get, set)


class SharedRingBuffer(RingBuffer):
    """A :class:`RingBuffer` whose frames and counters live in a :class:`multiprocessing.shared_memory.SharedMemory`
    block, so that the producer can be another process (the sound-card capture, :mod:`mer_live.live.capture`).

    The same protocol holds across processes: each counter is one aligned 64-bit word that only one side
    writes, and the producer publishes ``written`` only after the frames are in place (store order is kept
    on x86-64; on weaker memory models a reader could, rarely, see a slot a moment before its samples).
    The creator (``name=None``) owns the block and :meth:`unlink`\\s it; another process attaches by
    :attr:`name` and only :meth:`detach`\\es.
    """

    _written = _shared_counter(0)
    _read = _shared_counter(1)
    _dropped = _shared_counter(2)
    _overruns = _shared_counter(3)
    events = _shared_counter(4)  # producer only: events it counts for the consumer (PortAudio's overflow flags)

    def __init__(self, *, capacity: int, channels: int, name: str | None = None) -> None:  # noqa: D107
        from multiprocessing import shared_memory

        if capacity <= 0 or channels <= 0:
            raise ValueError(f"capacity and channels must be positive, got {capacity} and {channels}")
        size = _COUNTER_BYTES + capacity * channels * np.dtype(SAMPLE_DTYPE).itemsize
        self._shm = shared_memory.SharedMemory(name=name, create=name is None, size=size)
        self._owner = name is None
        self._counters = np.ndarray((len(_COUNTERS),), dtype=_COUNTER_DTYPE, buffer=self._shm.buf)
        self._buffer = np.ndarray((capacity, channels), dtype=SAMPLE_DTYPE, buffer=self._shm.buf, offset=_COUNTER_BYTES)
        self._capacity = capacity
        self._channels = channels
        if self._owner:
            self._counters[:] = 0

    @property
    def name(self) -> str:
        """The shared block's name, for :class:`SharedRingBuffer` ``(name=...)`` in another process."""
        return self._shm.name

    def unlink(self) -> None:
        """Owner: remove the block's name (this process's mapping stays valid until it exits)."""
        if self._owner:
            self._owner = False
            self._shm.unlink()

    def detach(self) -> None:
        """Another process: unmap the block (no method may be called afterwards)."""
        del self._counters, self._buffer
        self._shm.close()
