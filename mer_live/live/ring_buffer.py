"""A single-producer single-consumer ring buffer of audio frames, preallocated.

The producer is the audio callback (or a file/demo feeder thread); the consumer is the worker thread.
The producer alone advances ``written`` (after copying the data in: *publish*), the consumer alone
advances ``read`` (after copying the data out: *release*). Both are monotonically increasing integers; a
position's slot is ``index % capacity``. Each side reads the other's counter once per call, and a stale
value is always safe (the producer may see less free space, the consumer fewer frames, never data that is
being overwritten) -- provided the counter is never seen *ahead* of the memory operations it stands for.

That proviso is about memory order. :class:`RingBuffer` (one process) gets it from CPython: the two
threads run Python only while holding the GIL, and handing the GIL over is a lock release and acquire,
which orders all memory operations before it ahead of all after it, on every CPU. :class:`SharedRingBuffer`
(two processes, no shared GIL) gets it from a shared lock; its docstring gives the argument.

When the consumer falls behind and the buffer is full, :meth:`RingBuffer.write` keeps what is already
buffered and drops the newest frames, counting them in ``dropped``: the producer never touches the
consumer's index.
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
        self._skipped = 0  # producer only: frames skipped after a stall (lose)

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
        written, read = self._consumer_view()
        return written - read

    def free(self) -> int:
        """Frames the producer can write now without dropping."""
        written, read = self._producer_view()
        return self._capacity - (written - read)

    def write(self, *, frames: np.ndarray) -> int:
        """Producer: copy ``frames`` ``(num_frames, channels)`` in; returns how many were accepted.

        Allocates no sample buffers (only the small slice views NumPy makes for the copies), never waits
        and does no I/O: safe in an audio callback.
        """
        count = frames.shape[0]
        written, read = self._producer_view()
        space = self._capacity - (written - read)
        accepted = count if count <= space else space
        if accepted < count:
            self._dropped += count - accepted
            self._overruns += 1
        if accepted <= 0:
            return 0
        start = written % self._capacity
        first = self._capacity - start
        if accepted <= first:
            np.copyto(self._buffer[start : start + accepted], frames[:accepted])
        else:
            np.copyto(self._buffer[start:], frames[:first])
            np.copyto(self._buffer[: accepted - first], frames[first:accepted])
        self._publish(written=written + accepted)  # only after the data is in place
        return accepted

    def lose(self, *, count: int) -> None:
        """Producer: count ``count`` frames that were due but never written (a source that skipped
        ahead after a stall, see :attr:`skipped`)."""
        if count > 0:
            self._skipped += count
            self._overruns += 1

    @property
    def skipped(self) -> int:
        """Frames the producer skipped (:meth:`lose`): the consumer moves its stream time on by them."""
        return self._skipped

    def discard(self, *, max_frames: int) -> int:
        """Consumer: skip up to ``max_frames`` frames without reading them; returns the count."""
        written, read = self._consumer_view()
        count = max(0, min(max_frames, written - read))
        if count:
            self._release(read=read + count)
        return count

    def read_into(self, *, out: np.ndarray) -> int:
        """Consumer: copy up to ``len(out)`` frames into ``out`` ``(n, channels)``; returns the count."""
        written, read = self._consumer_view()
        count = min(out.shape[0], written - read)
        if count <= 0:
            return 0
        start = read % self._capacity
        first = self._capacity - start
        if count <= first:
            np.copyto(out[:count], self._buffer[start : start + count])
        else:
            np.copyto(out[:first], self._buffer[start:])
            np.copyto(out[first:count], self._buffer[: count - first])
        self._release(read=read + count)  # release the slots only after the data is out
        return count

    # The protocol's four steps; SharedRingBuffer makes them safe across processes (see its docstring).

    def _producer_view(self) -> tuple[int, int]:
        """``(written, read)`` as the producer may rely on them: its own count, and the consumer's (may be stale)."""
        return self._written, self._read

    def _publish(self, *, written: int) -> None:
        """Producer: frames up to ``written`` are in place."""
        self._written = written

    def _consumer_view(self) -> tuple[int, int]:
        """``(written, read)`` as the consumer may rely on them: the producer's count (may be stale), and its own."""
        return self._written, self._read

    def _release(self, *, read: int) -> None:
        """Consumer: frames up to ``read`` are out; their slots may be written again."""
        self._read = read

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
        self._skipped = 0


LOCK_TIMEOUT_S = 0.05  # the consumer's longest wait for the lock (the producer holds it for microseconds)
_COUNTERS = ("_written", "_read", "_dropped", "_overruns", "events", "_skipped")
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

    **Memory order.** x86-64 keeps stores in program order, but ARM (Apple Silicon, Raspberry Pi) and
    other weakly ordered CPUs may make the store of ``written`` visible to the other core before the
    stores of the samples it publishes, and may let the consumer's store of ``read`` overtake its loads of
    the samples (so the producer could overwrite a slot still being read). Plain Python and NumPy give
    no fence. So the counters are published and read under ``lock``, a :func:`multiprocessing.Lock`
    shared by both processes (a POSIX or Win32 semaphore): POSIX lists ``sem_post`` / ``sem_trywait`` /
    ``sem_wait`` among the functions that synchronise memory (XBD 4.12), Win32 semaphore waits and
    releases are full barriers, and C11 gives a lock's release *synchronises-with* the next acquire.
    Hence, for the producer: samples stored -> ``written`` stored -> lock released, and for the
    consumer: lock acquired -> ``written`` loaded -> samples loaded; the release happens-before the
    acquire that sees its ``written``, so the consumer's loads see the samples. Symmetrically the
    consumer's sample loads happen-before its release of ``read``, which happens-before the producer's
    acquire that sees it, and so before the producer's stores into those slots.

    **The audio callback never waits.** The producer only *tries* the lock (``acquire(False)``): when the
    consumer holds it (for a few instructions) the frames stay staged, already in their slots, and are
    published by the next :meth:`write` (or by :meth:`flush`, once the stream has stopped); the producer
    then also keeps its last known ``read``, which is safe (less free space). The consumer (the worker
    thread) waits for the lock at most ``LOCK_TIMEOUT_S``, and keeps its own ``read`` too; if the other
    process died while holding it, the consumer sees no new frames, the capture's supervisor reports the
    device lost, and the next child comes with a new lock (:meth:`use_lock`). The statistics (``dropped``, ``overruns``,
    ``events``) are read without the lock: they order nothing.

    The creator (``name=None``) owns the block and :meth:`unlink`\\s it; another process attaches by
    :attr:`name`, with the same ``lock``, and only :meth:`detach`\\es.
    """

    _written = _shared_counter(0)
    _read = _shared_counter(1)
    _dropped = _shared_counter(2)
    _overruns = _shared_counter(3)
    events = _shared_counter(4)  # producer only: events it counts for the consumer (PortAudio's overflow flags)
    _skipped = _shared_counter(5)

    def __init__(self, *, capacity: int, channels: int, name: str | None = None, lock=None) -> None:  # noqa: D107
        import multiprocessing
        from multiprocessing import shared_memory

        if capacity <= 0 or channels <= 0:
            raise ValueError(f"capacity and channels must be positive, got {capacity} and {channels}")
        if name is not None and lock is None:
            raise ValueError("attaching to a shared ring needs the creator's lock")
        size = _COUNTER_BYTES + capacity * channels * np.dtype(SAMPLE_DTYPE).itemsize
        self._shm = shared_memory.SharedMemory(name=name, create=name is None, size=size)
        self._owner = name is None
        self._counters = np.ndarray((len(_COUNTERS),), dtype=_COUNTER_DTYPE, buffer=self._shm.buf)
        self._buffer = np.ndarray((capacity, channels), dtype=SAMPLE_DTYPE, buffer=self._shm.buf, offset=_COUNTER_BYTES)
        self._capacity = capacity
        self._channels = channels
        self.lock = lock if lock is not None else multiprocessing.Lock()
        if self._owner:
            self._counters[:] = 0
        self._staged = int(self._counters[0])  # producer: frames in place, published or not
        self._seen_read = int(self._counters[1])  # producer: the consumer's read, as last seen under the lock
        self._seen_written = int(self._counters[0])  # consumer: the producer's written, as last seen under the lock
        self._own_read = int(self._counters[1])  # consumer: frames it has read, released or not

    def use_lock(self, lock) -> None:
        """A new lock shared with a new producer process (only while no producer runs)."""
        self.lock = lock

    # producer (never waits)

    def _producer_view(self) -> tuple[int, int]:
        if self.lock.acquire(False):
            try:
                self._counters[0] = self._staged  # publish what a busy lock held back
                self._seen_read = int(self._counters[1])
            finally:
                self.lock.release()
        return self._staged, self._seen_read

    def _publish(self, *, written: int) -> None:
        self._staged = written
        if self.lock.acquire(False):
            try:
                self._counters[0] = written
            finally:
                self.lock.release()

    def flush(self, *, timeout_s: float = LOCK_TIMEOUT_S) -> bool:
        """Producer, outside the audio callback: publish every staged frame (waits for the lock)."""
        if not self.lock.acquire(True, timeout_s):
            return False
        try:
            self._counters[0] = max(int(self._counters[0]), self._staged)  # a late callback may have published more
        finally:
            self.lock.release()
        return True

    # consumer (waits at most LOCK_TIMEOUT_S)

    def _consumer_view(self) -> tuple[int, int]:
        if self.lock.acquire(True, LOCK_TIMEOUT_S):
            try:
                self._counters[1] = self._own_read  # release what a stuck lock held back
                self._seen_written = int(self._counters[0])
            finally:
                self.lock.release()
        return self._seen_written, self._own_read

    def _release(self, *, read: int) -> None:
        self._own_read = read
        if self.lock.acquire(True, LOCK_TIMEOUT_S):  # else: released by the next view (the producer sees less room)
            try:
                self._counters[1] = read
            finally:
                self.lock.release()

    @property
    def written(self) -> int:
        """Frames published by the producer (as last seen by the consumer)."""
        return self._consumer_view()[0]

    def reset(self) -> None:
        """Forget everything (only while neither side is running)."""
        super().reset()
        self._staged = self._seen_read = self._seen_written = self._own_read = 0

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
