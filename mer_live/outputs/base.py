"""The output stage: the worker hands every reading to the sinks here, and never waits for one.

Each sink gets a *lane*: a bounded queue (``QUEUE_READINGS``) and its own thread that calls the sink's
``process``. :meth:`Output.process` only appends to the queues, so a sink that is slow or stuck (a
FIFO whose reader stopped, a host name that takes 10 s to resolve, a disk that hangs) delays neither
the analysis nor any other sink. When a lane's queue is full its oldest reading is dropped and
counted. The sinks themselves do not block either (non-blocking sockets and FIFO writes, host names
resolved in the background, see :mod:`mer_live.outputs.osc`), and count what they could not deliver.

A sink is anything with ``process(*, reading)`` and ``close()`` (the :class:`Sink` protocol). It may
also have ``name`` (for the log), and ``delivered`` / ``dropped`` counters of *updates* (readings with
``is_update``; status-only heartbeats are not counted); without them the lane counts what it handed
over. :meth:`Output.counts` reads every lane's counters, and every reading leaving the stage carries
the total dropped so far (``Reading.dropped``, sent as the 5th argument of ``/mer/status``). Drops are
logged at most once per ``LOG_INTERVAL_S`` per sink, counting the updates dropped since the last line
and naming the sink's own reason (its ``problem``, e.g. "cannot resolve HOST (...)") or a full queue,
and summarised when the stage closes.

:meth:`Output.close` lets every lane send what is queued (the final status included) and close its
sink, waiting at most ``CLOSE_TIMEOUT_S`` in all; a lane still stuck after that is left to the process
exit, with a warning, so shutdown never hangs on an output.

stderr is an output too: :class:`NonBlockingWriter` carries the log and the live readout, so a
terminal or pipe that stops taking text cannot block the thread that logs.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Protocol, TextIO

from mer_live.core.rate_limit import RateLimitedLog
from mer_live.core.reading import Reading

LOG = logging.getLogger("mer_live")

LOG_INTERVAL_S = 10.0  # drops are logged at most once per this many seconds per sink
QUEUE_READINGS = 256  # per sink: ~8 s of updates at the top rate (30/s), then the oldest go
CLOSE_TIMEOUT_S = 0.8  # all lanes together, so that the final status is out within 1 s of a stop
THREAD_PREFIX = "mer-live-output"
DELAY_RANGE_MS = (0.0, 5000.0)  # an output's delay_ms setting (its lane's delay_s, or the DMX frame clock's)
MS_PER_S = 1000.0


class Sink(Protocol):
    """Where readings go (OSC, CSV, the readout, ...). ``process`` runs on the sink's own lane thread,
    one reading at a time, in order; ``close`` runs on that thread too, after the last reading.
    Optional: ``name: str``, ``delivered: int`` and ``dropped: int`` (updates), and ``delay_s: float``: the
    lane hands each reading over this long after it arrived (to line an output up with video, a distant rig
    or another output; what is still held back when the stage closes goes at once)."""

    def process(self, *, reading: Reading) -> None: ...

    def close(self) -> None: ...


class LiveControl(Protocol):
    """The running daemon's live settings (those declared ``setting(..., live=True)``) and the control port's
    other two commands, for an output that shows or changes them; the worker implements it, and the control
    port makes the same calls."""

    def current_config(self) -> dict[str, float | int | str | bool]: ...

    def set_setting(self, *, key: str, value: float) -> None: ...

    def reset_smoothing(self) -> None: ...

    def set_muted(self, *, muted: bool) -> None: ...


class LiveHandle:
    """A :class:`LiveControl` for outputs, bound to the worker once it exists (outputs are made before it).

    ``fields``: ``{key: dataclasses.Field}`` of the live settings (type, default, bounds, unit, help in the
    metadata). ``control_address``: where the control port listens (bound ``(host, port)``), None without
    one, known once bound. Before :meth:`bind`, :meth:`current_config` is empty and the setters raise."""

    def __init__(self, *, fields: dict[str, dataclasses.Field]) -> None:
        self.fields = dict(fields)
        self.control_address: tuple[str, int] | None = None
        self._target: LiveControl | None = None

    def bind(self, target: LiveControl, *, control_address: tuple[str, int] | None = None) -> None:
        self.control_address = control_address
        self._target = target

    def _bound(self) -> LiveControl:
        target = self._target
        if target is None:
            raise RuntimeError("the analysis has not started yet")
        return target

    def current_config(self) -> dict[str, float | int | str | bool]:
        target = self._target
        return {} if target is None else target.current_config()

    def set_setting(self, *, key: str, value: float) -> None:
        """Checked against the setting's limits by the worker (ValueError, KeyError for a key that is not live)."""
        self._bound().set_setting(key=key, value=value)

    def reset_smoothing(self) -> None:
        self._bound().reset_smoothing()

    def set_muted(self, *, muted: bool) -> None:
        self._bound().set_muted(muted=muted)


@dataclass(frozen=True)
class SinkContext:
    """What the daemon hands every output's ``make`` besides its own settings: ``settings`` (the root
    :class:`~mer_live.config.settings.Settings`, read-only), ``stderr`` (the non-blocking writer the log
    uses) and ``live`` (the live settings, a :class:`LiveHandle`; None outside the daemon)."""

    settings: object
    stderr: TextIO
    live: LiveControl | None = None


@dataclass(frozen=True)
class SinkCounts:
    """One sink's counters: updates delivered, updates dropped (by the sink, or from its queue), and the
    readings waiting in its queue now."""

    name: str
    delivered: int
    dropped: int
    queued: int = 0


def sink_name(*, sink: object) -> str:
    return str(getattr(sink, "name", type(sink).__name__))


class _Lane:
    """One sink with its bounded queue and thread."""

    def __init__(self, *, sink: Sink, capacity: int) -> None:
        self.sink = sink
        self.name = sink_name(sink=sink)
        self._capacity = capacity
        self._delay_s = float(getattr(sink, "delay_s", 0.0))
        self._queue: collections.deque[tuple[float, Reading]] = collections.deque()  # (due, reading)
        self._ready = threading.Condition()
        self._closing = False
        self.queue_dropped = 0
        self.handed = 0  # updates handed to the sink (its delivered count when it keeps none)
        self.failures = 0
        self._log = RateLimitedLog(logger=LOG, window_s=LOG_INTERVAL_S)
        self._thread = threading.Thread(target=self._run, name=f"{THREAD_PREFIX} {self.name}", daemon=True)
        self._thread.start()

    def offer(self, *, reading: Reading) -> None:
        """Queue ``reading`` (never blocks); a full queue drops its oldest reading."""
        with self._ready:
            if self._closing:
                return
            if len(self._queue) >= self._capacity:
                if self._queue.popleft()[1].is_update:
                    self.queue_dropped += 1
            self._queue.append((time.monotonic() + self._delay_s, reading))
            self._ready.notify()

    def _next(self) -> Reading | None:
        """The next reading once it is due (at once when closing); None when closed and empty."""
        with self._ready:
            while True:
                if self._queue:
                    wait = self._queue[0][0] - time.monotonic()
                    if wait <= 0.0 or self._closing:
                        return self._queue.popleft()[1]
                    self._ready.wait(wait)
                elif self._closing:
                    return None
                else:
                    self._ready.wait()

    def _run(self) -> None:
        while (reading := self._next()) is not None:
            try:
                self.sink.process(reading=reading)
                if reading.is_update:
                    self.handed += 1
            except Exception as error:  # noqa: BLE001 - no sink may stop the others or the daemon
                self.failures += 1
                self._log.log(key="process", message=f"output {self.name} failed ({type(error).__name__}: {error}); carrying on")
        try:
            self.sink.close()
        except Exception as error:  # noqa: BLE001 - closing must not stop the other lanes
            LOG.warning("output %s: close failed (%s)", self.name, error)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def problem(self) -> str:
        """Why this sink's updates were dropped: the sink's own reason, else a full queue."""
        reason = str(getattr(self.sink, "problem", "") or getattr(self.sink, "last_error", "") or "")
        if reason:
            return reason
        if self.failures:
            return "its output failed (see above)"
        return "its queue was full: it cannot keep up"

    def counts(self) -> SinkCounts:
        delivered = getattr(self.sink, "delivered", None)
        dropped = int(getattr(self.sink, "dropped", 0)) + self.queue_dropped + self.failures
        return SinkCounts(
            name=self.name, delivered=int(self.handed if delivered is None else delivered), dropped=dropped, queued=self.queued,
        )

    def finish(self) -> None:
        """Send what is queued, then close the sink (on the lane thread)."""
        with self._ready:
            self._closing = True
            self._ready.notify()

    def join(self, *, timeout: float) -> bool:
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()


class Output:
    """The worker's one sink: fans each reading out to every sink's lane (see the module docstring).

    ``sinks``: the outputs; from here on the stage owns them and closes them in :meth:`close`.
    """

    name = "output"

    def __init__(self, *, sinks: list[Sink], queue_readings: int = QUEUE_READINGS) -> None:
        if queue_readings < 1:
            raise ValueError(f"queue_readings must be at least 1, got {queue_readings}")
        self._lanes = [_Lane(sink=sink, capacity=queue_readings) for sink in sinks]
        self._reported = [0] * len(self._lanes)  # each lane's dropped count at its last log line
        self._logged_at = [-math.inf] * len(self._lanes)
        self._closed = False

    def counts(self) -> list[SinkCounts]:
        """Every sink's counters, in the order given (readable from any thread)."""
        return [lane.counts() for lane in self._lanes]

    @property
    def dropped(self) -> int:
        """Updates dropped so far, summed over the sinks."""
        return sum(counts.dropped for counts in self.counts())

    def process(self, *, reading: Reading) -> None:
        """Hand ``reading`` to every lane, stamped with the total dropped so far; never blocks."""
        counts = self.counts()
        stamped = dataclasses.replace(reading, dropped=sum(c.dropped for c in counts))
        now = time.monotonic()
        for index, (lane, count) in enumerate(zip(self._lanes, counts)):
            lane.offer(reading=stamped)
            if count.dropped > self._reported[index] and now - self._logged_at[index] >= LOG_INTERVAL_S:
                LOG.warning(
                    "output %s: %d update(s) dropped%s (%d in all): %s; the analysis and the other outputs carry on",
                    lane.name, count.dropped - self._reported[index],
                    "" if math.isinf(self._logged_at[index]) else f" in the last {now - self._logged_at[index]:.0f} s",
                    count.dropped, lane.problem(),
                )
                self._reported[index], self._logged_at[index] = count.dropped, now

    def close(self, *, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Send what is queued and close every sink, waiting at most ``timeout_s`` in all."""
        if self._closed:
            return
        self._closed = True
        for lane in self._lanes:
            lane.finish()
        deadline = time.monotonic() + timeout_s
        for lane in self._lanes:
            if not lane.join(timeout=deadline - time.monotonic()):
                LOG.warning(
                    "output %s did not finish within %.1f s (%d update(s) still queued); leaving it to the exit",
                    lane.name, timeout_s, lane.queued,
                )
        for count in self.counts():
            if count.dropped:
                LOG.warning("output %s: %d update(s) delivered, %d dropped", count.name, count.delivered, count.dropped)


# ------------------------------------------------------------------------------------------- stderr

WRITER_QUEUE_CHUNKS = 1000  # log lines / readout lines waiting for stderr; beyond that they are dropped
DRAIN_TIMEOUT_S = 0.5


class NonBlockingWriter:
    """A text stream (for stderr: the log and the readout) whose ``write`` never blocks the caller.

    Text is queued and written by a thread of its own, straight to a duplicate of the stream's file
    descriptor when it has one (so a write stuck on a pipe that nobody reads holds no Python lock,
    and the interpreter can still exit), else through the stream object. When the stream does not
    keep up, up to ``WRITER_QUEUE_CHUNKS`` writes wait; later ones are dropped and counted, and a note
    says how many once the stream takes text again. ``flush`` does not wait (callers such as
    :class:`logging.StreamHandler` flush after every line); :meth:`drain` waits, for a bounded time.
    """

    def __init__(self, *, stream: TextIO, capacity: int = WRITER_QUEUE_CHUNKS) -> None:
        self._stream = stream
        try:
            self._fd: int | None = os.dup(stream.fileno())
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            self._fd = None  # e.g. an in-memory stream: written through the object
        self._capacity = capacity
        self._chunks: collections.deque[str] = collections.deque()
        self._ready = threading.Condition()
        self._writing = False
        self._closed = False
        self._unreported = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"{THREAD_PREFIX} stderr", daemon=True)
        self._thread.start()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def write(self, text: str) -> int:
        with self._ready:
            if self._closed or len(self._chunks) >= self._capacity:
                self.dropped += 1
                self._unreported += 1
                return 0
            self._chunks.append(text)
            self._ready.notify_all()
        return len(text)

    def flush(self) -> None:
        """Does not wait (see :meth:`drain`)."""

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._chunks and not self._closed:
                    self._ready.wait()
                if not self._chunks:
                    return
                text = self._chunks.popleft()
                missed, self._unreported = self._unreported, 0
                self._writing = True
            if missed:
                text = f"mer-live: {missed} line(s) for stderr dropped: it was not being read\n" + text
            self._write(text=text)
            with self._ready:
                self._writing = False
                self._ready.notify_all()

    def _write(self, *, text: str) -> None:
        try:
            if self._fd is None:
                self._stream.write(text)
                self._stream.flush()
                return
            data = text.encode("utf-8", errors="replace")
            while data:
                data = data[os.write(self._fd, data) :]
        except (OSError, ValueError):
            return  # stderr closed or gone: nothing to tell anyone

    def drain(self, *, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait until everything queued is written, at most ``timeout_s``; returns whether it was."""
        deadline = time.monotonic() + timeout_s
        with self._ready:
            while self._chunks or self._writing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._ready.wait(remaining)
        return True

    def close(self) -> None:
        """Drain (bounded), then stop the thread; a thread stuck in a write is left to the exit."""
        self.drain()
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._thread.join(DRAIN_TIMEOUT_S)
        if self._fd is not None and not self._thread.is_alive():
            os.close(self._fd)
            self._fd = None
