"""The single-producer single-consumer ring buffer: order, wrap-around, overruns, two threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mer_live.live.ring_buffer import RingBuffer


def _ramp(start: int, count: int, channels: int) -> np.ndarray:
    values = np.arange(start, start + count, dtype=np.float32)
    return np.repeat(values[:, None], channels, axis=1) + np.arange(channels, dtype=np.float32)[None, :] * 0.25


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=64),
    channels=st.integers(min_value=1, max_value=3),
    operations=st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=80)), max_size=60),
)
def test_reads_return_accepted_frames_in_order(capacity: int, channels: int, operations: list) -> None:
    ring = RingBuffer(capacity=capacity, channels=channels)
    produced = 0
    accepted_total: list[np.ndarray] = []
    read_total: list[np.ndarray] = []
    for is_write, count in operations:
        if is_write:
            block = _ramp(produced, count, channels)
            produced += count
            free = ring.free()
            accepted = ring.write(frames=block)
            assert accepted == min(count, free)
            accepted_total.append(block[:accepted])
        else:
            before = ring.available()
            out = ring.read(max_frames=count)
            assert out.shape == (min(count, before), channels)
            read_total.append(out)
        assert 0 <= ring.available() <= capacity
        assert ring.available() + ring.free() == capacity
    read_total.append(ring.read(max_frames=capacity))
    expected = np.concatenate(accepted_total) if accepted_total else np.zeros((0, channels), np.float32)
    got = np.concatenate(read_total)
    np.testing.assert_array_equal(got, expected)
    assert ring.written == len(expected)
    assert ring.dropped == produced - len(expected)


def test_overrun_keeps_buffered_frames_drops_newest_and_counts() -> None:
    ring = RingBuffer(capacity=8, channels=1)
    assert ring.write(frames=_ramp(0, 6, 1)) == 6
    assert ring.write(frames=_ramp(6, 5, 1)) == 2
    assert ring.dropped == 3 and ring.overruns == 1
    assert ring.write(frames=_ramp(11, 1, 1)) == 0
    assert ring.overruns == 2
    np.testing.assert_array_equal(ring.read(max_frames=100)[:, 0], np.arange(8, dtype=np.float32))


def test_read_into_preallocated_output_wraps_around() -> None:
    ring = RingBuffer(capacity=5, channels=2)
    ring.write(frames=_ramp(0, 4, 2))
    ring.read(max_frames=3)
    ring.write(frames=_ramp(4, 4, 2))  # wraps
    out = np.full((10, 2), -1.0, dtype=np.float32)
    assert ring.read_into(out=out) == 5
    np.testing.assert_array_equal(out[:5], _ramp(3, 5, 2))
    assert np.all(out[5:] == -1.0)


def test_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        RingBuffer(capacity=0, channels=1)
    with pytest.raises(ValueError):
        RingBuffer(capacity=4, channels=0)


def test_producer_and_consumer_threads_without_locks_lose_and_corrupt_nothing() -> None:
    """A producer that respects free() and a consumer on another thread: the exact sequence arrives."""
    total, block, capacity = 50_000, 97, 1000
    ring = RingBuffer(capacity=capacity, channels=1)
    received: list[np.ndarray] = []

    def produce() -> None:
        sent = 0
        while sent < total:
            count = min(block, total - sent)
            if ring.free() >= count:
                ring.write(frames=_ramp(sent, count, 1))
                sent += count

    def consume() -> None:
        got = 0
        out = np.empty((333, 1), dtype=np.float32)
        while got < total:
            count = ring.read_into(out=out)
            received.append(out[:count].copy())
            got += count

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    np.testing.assert_array_equal(np.concatenate(received)[:, 0], np.arange(total, dtype=np.float32))
    assert ring.dropped == 0


def _produce(name: str, capacity: int, frames: np.ndarray, block: int, lock) -> None:
    """Another process: write ``frames`` into the shared ring in blocks, waiting for room (drops nothing)."""
    from mer_live.live.ring_buffer import SharedRingBuffer

    ring = SharedRingBuffer(capacity=capacity, channels=frames.shape[1], name=name, lock=lock)
    for start in range(0, len(frames), block):
        chunk = frames[start : start + block]
        while ring.free() < len(chunk):
            time.sleep(0.0005)
        ring.write(frames=chunk)
    ring.events += 7
    assert ring.flush()
    ring.detach()


def test_a_shared_ring_buffer_carries_frames_from_another_process_bit_exactly() -> None:
    import multiprocessing

    from mer_live.live.ring_buffer import SharedRingBuffer

    frames = np.random.default_rng(5).standard_normal((25_000, 2)).astype(np.float32)
    context = multiprocessing.get_context("spawn")
    ring = SharedRingBuffer(capacity=1_000, channels=2, lock=context.Lock())  # much smaller than the signal: it wraps many times
    try:
        producer = context.Process(target=_produce, args=(ring.name, 1_000, frames, 64, ring.lock))
        producer.start()
        received = []
        deadline = time.monotonic() + 60
        while sum(len(r) for r in received) < len(frames) and time.monotonic() < deadline:
            received.append(ring.read(max_frames=300))
            if not len(received[-1]):
                time.sleep(0.0005)
        producer.join(30)
        assert producer.exitcode == 0
        np.testing.assert_array_equal(np.concatenate(received), frames)
        assert ring.written == len(frames) and ring.available() == 0
        assert ring.dropped == 0 and ring.overruns == 0 and ring.events == 7  # the producer's counters, seen here
    finally:
        ring.unlink()


class _ScheduledLock:
    """A lock whose acquisitions succeed or fail as a test says (the other process holding it, or dead)."""

    def __init__(self) -> None:
        self.free = True

    def acquire(self, block: bool = True, timeout: float = -1) -> bool:  # noqa: ARG002 - multiprocessing's signature
        return self.free

    def release(self) -> None:
        pass


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=48),
    operations=st.lists(
        st.tuples(st.sampled_from(["write", "read"]), st.integers(min_value=0, max_value=60), st.booleans()), max_size=80
    ),
)
def test_a_shared_ring_never_shows_or_overwrites_unpublished_frames(capacity: int, operations: list) -> None:
    """Producer and consumer as two attachments of one block, with the lock busy or free at each step: the
    consumer gets exactly the accepted frames, in order (a frame staged behind a busy lock is published
    later, a slot released behind a busy lock is reused later, never before), and a flush publishes all."""
    from mer_live.live.ring_buffer import SharedRingBuffer

    lock = _ScheduledLock()
    consumer = SharedRingBuffer(capacity=capacity, channels=1, lock=lock)
    producer = SharedRingBuffer(capacity=capacity, channels=1, name=consumer.name, lock=lock)
    try:
        accepted: list[np.ndarray] = []
        received: list[np.ndarray] = []
        produced = 0
        for kind, size, lock_free in operations:
            lock.free = lock_free
            if kind == "write":
                frames = _ramp(produced, size, 1)
                produced += size
                accepted.append(frames[: producer.write(frames=frames)])
            else:
                received.append(consumer.read(max_frames=size))
            got = np.concatenate(received or [np.empty((0, 1), np.float32)])
            sent = np.concatenate(accepted or [np.empty((0, 1), np.float32)])
            np.testing.assert_array_equal(got, sent[: len(got)])  # in order, none overwritten, none invented
        lock.free = True
        assert producer.flush()
        received.append(consumer.read(max_frames=capacity))
        received.append(consumer.read(max_frames=capacity))  # a wrapped remainder
        got = np.concatenate(received or [np.empty((0, 1), np.float32)])
        sent = np.concatenate(accepted or [np.empty((0, 1), np.float32)])
        np.testing.assert_array_equal(got, sent)
    finally:
        producer.detach()
        consumer.unlink()


def _hammer(name: str, capacity: int, total: int, seed: int, lock) -> None:
    """Another process: write a ramp of ``total`` frames in random blocks as fast as room allows."""
    from mer_live.live.ring_buffer import SharedRingBuffer

    rng = np.random.default_rng(seed)
    ring = SharedRingBuffer(capacity=capacity, channels=2, name=name, lock=lock)
    sent = 0
    while sent < total:
        count = int(min(rng.integers(1, 200), total - sent))
        if ring.free() >= count:
            assert ring.write(frames=_ramp(sent, count, 2)) == count
            sent += count
    while not ring.flush():
        pass
    ring.detach()


def test_a_shared_ring_under_a_busy_producer_process_delivers_every_frame_once_in_order() -> None:
    """Stress: a producer process writing as fast as it can, the consumer reading random amounts, both
    contending for the lock all the time: every frame arrives once, in order, bit exact."""
    import multiprocessing

    from mer_live.live.ring_buffer import SharedRingBuffer

    total, capacity = 200_000, 512
    context = multiprocessing.get_context("spawn")
    ring = SharedRingBuffer(capacity=capacity, channels=2, lock=context.Lock())
    rng = np.random.default_rng(11)
    try:
        producer = context.Process(target=_hammer, args=(ring.name, capacity, total, 3, ring.lock))
        producer.start()
        out = np.empty((300, 2), dtype=np.float32)
        received = []
        deadline = time.monotonic() + 120
        while sum(len(r) for r in received) < total and time.monotonic() < deadline:
            count = ring.read_into(out=out[: int(rng.integers(1, 300))])
            received.append(out[:count].copy())
        producer.join(30)
        assert producer.exitcode == 0
        np.testing.assert_array_equal(np.concatenate(received), _ramp(0, total, 2))
        assert ring.dropped == 0
    finally:
        ring.unlink()
