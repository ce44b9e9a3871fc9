"""Where the audio comes from: a sound card (PortAudio via sounddevice), a file, or the demo piece.

Every source writes raw frames ``(num_frames, channels)`` float32 at its own rate into a preallocated
:class:`~mer_live.live.ring_buffer.RingBuffer` holding ``RING_SECONDS`` = 10 s of audio (220,500 frames at
the model rate; the buffer holds the source's frames before resampling, so 480,000 at a 48 kHz card);
the worker thread reads them from there. The sound-card callback only copies into the ring buffer and counts PortAudio's
overflow flags: no allocation of buffers, no locks, no I/O. File and demo sources feed the ring buffer
from a thread, paced in real time (as if played) or, with ``fast``, as fast as the worker consumes.

The sound card's stream runs in a child process (:mod:`mer_live.live.capture`) that writes into a
:class:`~mer_live.live.ring_buffer.SharedRingBuffer`. When the device vanishes (unplugged, or the JACK server
died), :class:`CaptureSource` ends that child and starts a new one every ``RECONNECT_INTERVAL_S`` to look
for the same device (same name and host API), and capturing carries on when it is back, in the same
daemon process: its sockets, counters and stream time go on. :attr:`CaptureSource.generation` counts
the connections, so that the worker starts its analysis afresh on the new audio.

``sounddevice`` is imported lazily (in the capture child, and for ``-l``), so that tests can point ALSA
or JACK at test devices first.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from mer_live.live.devices import SourceError
from mer_live.core.rate_limit import RateLimitedLog
from mer_live.live.ring_buffer import RingBuffer, SharedRingBuffer
from mer_live.audio import SAMPLERATE_RANGE_HZ, declared_frames, decode_error_reason, decode_errors, file_problem, shortfall_problem

LOG = logging.getLogger("mer_live")

RING_SECONDS = 10.0
FEED_BLOCK_FRAMES = 1024
FAST_WAIT_S = 0.002
CLOSE_TIMEOUT_S = 2.0
STALL_S = 3.0  # a real-time feeder (or the worker) this far behind the clock skips to the present
RECONNECT_INTERVAL_S = 2.0  # while the input device is gone, look for it again this often
LOST_AFTER_S = 2.0  # a started stream that delivers no frames for this long counts as lost
RECONNECT_LOG_WINDOW_S = 30.0  # "still waiting for the device" is logged at most once per window
CHILD_ANSWER_TIMEOUT_S = 20.0  # a capture child must find its device (or fail) within this
CHILD_STOP_TIMEOUT_S = 3.0  # then it is killed (a child stuck in a dead PortAudio backend)
SUPERVISE_S = 0.1  # how often the capture is checked for a lost device
# A fork server starts capture children quickly (it preloads numpy, never PortAudio); spawn where there is none.
CHILD_START_METHOD = "forkserver" if sys.platform != "win32" else "spawn"


class Source(Protocol):
    """What the worker needs from a source."""

    ring: RingBuffer
    samplerate: float
    channel: int | None  # the channel to take, None = mono mix of all in the ring
    realtime: bool  # True: frames arrive in real time; False: as fast as consumed

    @property
    def finished(self) -> bool: ...  # no more frames will come (end of file)

    @property
    def active(self) -> bool: ...  # frames are (still) arriving

    @property
    def overflows(self) -> int: ...  # input overflow events (PortAudio flags and ring buffer overruns)

    def start(self) -> None: ...

    def close(self) -> None: ...


def ring_capacity(*, samplerate: float) -> int:
    """Frames in ``RING_SECONDS`` at ``samplerate``."""
    return int(math.ceil(RING_SECONDS * samplerate))


class _Child:
    """One capture child process and the daemon's end of its pipe."""

    def __init__(self, *, context, request: dict, stop: threading.Event) -> None:
        from mer_live.live import capture

        self._stop = stop
        self.connection, child_end = context.Pipe()
        self.ring_lock = context.Lock()  # orders the shared ring's counters (SharedRingBuffer); one per child
        self.process = context.Process(
            target=capture.run_child, args=(child_end, request, self.ring_lock), name="mer-live-capture", daemon=True
        )
        self.process.start()
        child_end.close()

    def answer(self, *, expect: str) -> tuple:
        """The child's next message, which must be ``expect``; raises :class:`SourceError` with the child's
        error, or when it dies or does not answer within ``CHILD_ANSWER_TIMEOUT_S``."""
        deadline = time.monotonic() + CHILD_ANSWER_TIMEOUT_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if not self.connection.poll(SUPERVISE_S):
                    continue
                message = self.connection.recv()
            except (EOFError, OSError):
                self.process.join(SUPERVISE_S)
                raise SourceError(f"the capture process ended (exit status {self.process.exitcode})") from None
            if message[0] == expect:
                return message
            raise SourceError(str(message[1]))
        raise SourceError("stopped" if self._stop.is_set() else f"the capture process did not answer within {CHILD_ANSWER_TIMEOUT_S:.0f} s")

    def send(self, *message: object) -> None:
        try:
            self.connection.send(message)
        except (OSError, ValueError):
            pass  # the child has gone already

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def end(self) -> None:
        """Ask the child to stop; kill it if it does not (it may be stuck in a dead backend)."""
        self.send("stop")
        self.process.join(CHILD_STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(CHILD_STOP_TIMEOUT_S)
        self.connection.close()


class CaptureSource:
    """A sound-card input: a ``sounddevice.InputStream`` in a capture child process (:mod:`mer_live.live.capture`)
    feeding a shared ring buffer, supervised from a thread here.

    ``channel`` ``K`` opens ``K + 1`` channels and takes channel ``K``; ``None`` opens up to
    ``MAX_MIX_CHANNELS`` and mixes them to mono. ``samplerate`` 0 uses the device's own rate. The device is
    looked up (and the settings checked) by the first child, in the constructor: a bad device or setting
    is a :class:`SourceError` then.
    """

    realtime = True

    def __init__(self, *, device: str = "", channel: int | None = None, samplerate: float = 0) -> None:
        import multiprocessing

        self._context = multiprocessing.get_context(CHILD_START_METHOD)
        if CHILD_START_METHOD == "forkserver":
            self._context.set_forkserver_preload(["mer_live.live.capture"])  # not __main__: nothing else to import
        self._lock = threading.Lock()  # guards the child between the supervisor and close()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._log = RateLimitedLog(logger=LOG, window_s=RECONNECT_LOG_WINDOW_S)
        self._closed = False
        self._connected = False
        self._child = _Child(context=self._context, request={"spec": device, "channel": channel, "channels": 0, "samplerate": samplerate}, stop=self._stop)
        try:
            _, info = self._child.answer(expect="device")
        except SourceError:
            self._child.end()
            raise
        self.device = {key: info[key] for key in ("index", "name", "hostapi_name")}
        self.channel = channel
        self.channels = int(info["channels"])
        self.samplerate = float(info["samplerate"])
        self.ring = SharedRingBuffer(
            capacity=ring_capacity(samplerate=self.samplerate), channels=self.channels, lock=self._child.ring_lock
        )
        self.generation = 0  # connections so far; the worker starts afresh when it changes
        self._last_written = 0
        self._last_progress = time.monotonic()

    def _start_child(self) -> None:
        self.ring.use_lock(self._child.ring_lock)  # a child killed while holding the old one cannot block the worker
        self._child.send("start", self.ring.name, self.ring.capacity)
        self._child.answer(expect="started")
        self._last_written, self._last_progress = self.ring.written, time.monotonic()
        self.generation += 1
        self._connected = True

    def start(self) -> None:
        """Start the stream (raises :class:`SourceError`), then supervise it on a thread."""
        try:
            self._start_child()
        except SourceError:
            self._child.end()
            raise
        self._supervisor = threading.Thread(target=self._supervise, name="mer-live-capture-supervisor", daemon=True)
        self._supervisor.start()

    def _lost(self) -> bool:
        """The child has ended (PortAudio stopped the stream), or no frame has arrived for ``LOST_AFTER_S``."""
        if not self._child.alive:
            return True
        now, written = time.monotonic(), self.ring.written
        if written != self._last_written:
            self._last_written, self._last_progress = written, now
        return now - self._last_progress >= LOST_AFTER_S

    def _supervise(self) -> None:
        name = self.device["name"]
        while not self._stop.wait(SUPERVISE_S):
            if self._connected and self._lost():
                self._connected = False
                LOG.warning(
                    "the input device %r has gone; waiting for it to come back (checking every %.0f s)", name, RECONNECT_INTERVAL_S
                )
                self._child.end()
            if not self._connected and not self._reconnect():
                self._stop.wait(RECONNECT_INTERVAL_S)

    def _reconnect(self) -> bool:
        """One attempt to find the device again in a new child and capture from it."""
        request = {
            "name": self.device["name"], "hostapi": self.device["hostapi_name"], "channel": self.channel,
            "channels": self.channels, "samplerate": self.samplerate,
        }
        with self._lock:
            if self._closed:
                return False
            self._child = _Child(context=self._context, request=request, stop=self._stop)
        try:
            _, info = self._child.answer(expect="device")
            self._start_child()
        except SourceError as error:
            self._child.end()
            if not self._stop.is_set():
                self._log.log(key="reconnect", message=f"input device {self.device['name']!r} is still gone: {error}")
            return False
        self.device["index"] = info["index"]
        LOG.warning("input device %r is back (id %d); capturing again", self.device["name"], info["index"])
        return True

    @property
    def finished(self) -> bool:
        return False

    @property
    def active(self) -> bool:
        """Whether frames are arriving from a connected device."""
        return self._connected and not self._closed and self._child.alive

    @property
    def overflows(self) -> int:
        return self.ring.events + self.ring.overruns

    def close(self) -> None:
        """Stop supervising and end the child (killing it if its backend hangs). The ring buffer stays
        readable in this process."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(CHILD_ANSWER_TIMEOUT_S + CHILD_STOP_TIMEOUT_S)
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._child.end()
        self.ring.unlink()


# --------------------------------------------------------------------------------- files and the demo


class _Feeder:
    """Feeds frames from ``read(n) -> (m <= n, channels)`` into a ring buffer on a thread.

    Real time: a block is written when its last frame would have been played (like a sound card); after
    a stall (the process was stopped or starved for more than ``STALL_S``) the frames that were due
    meanwhile are skipped, and counted as lost in the ring buffer, as a sound card would have lost them:
    never written late in a burst. Fast: blocks are written as soon as the ring buffer has room (nothing
    is dropped).
    """

    realtime: bool

    def __init__(self, *, samplerate: float, channels: int, channel: int | None, fast: bool) -> None:
        self.samplerate = float(samplerate)
        self.channel = channel
        self.realtime = not fast
        self.ring = RingBuffer(capacity=ring_capacity(samplerate=samplerate), channels=channels)
        self._stop = threading.Event()
        self._finished = False
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def _read(self, *, max_frames: int) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _skip(self, *, frames: int) -> int:  # pragma: no cover - overridden
        """Skip ``frames`` frames of the input (fewer at its end); returns how many were skipped."""
        raise NotImplementedError

    def _ended(self, *, fed: int) -> None:
        """The input ended after ``fed`` frames (a file checks that it was whole)."""

    def _run(self) -> None:
        start = time.monotonic()
        fed = 0
        try:
            while not self._stop.is_set():
                if self.realtime:
                    behind = time.monotonic() - (start + fed / self.samplerate)
                    if behind > STALL_S:  # stopped or starved: what was due meanwhile is gone, as on a card
                        skipped = self._skip(frames=int(behind * self.samplerate))
                        fed += skipped
                        self.ring.lose(count=skipped)
                block = self._read(max_frames=FEED_BLOCK_FRAMES)
                if block.shape[0] == 0:
                    self._ended(fed=fed)
                    break
                if self.realtime:
                    delay = start + (fed + block.shape[0]) / self.samplerate - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                else:
                    while self.ring.free() < block.shape[0]:
                        if self._stop.wait(FAST_WAIT_S):
                            return
                self.ring.write(frames=block)
                fed += block.shape[0]
        except (OSError, RuntimeError, ValueError) as error:
            self.error = f"reading input failed ({error})"
        finally:
            self._finished = True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mer-live-feeder", daemon=True)
        self._thread.start()

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def active(self) -> bool:
        return self._thread is not None and not self._finished

    @property
    def overflows(self) -> int:
        return self.ring.overruns

    def close(self) -> None:
        """Stop the feeder thread; returns whether it has ended (a reader stuck in a read may not)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(CLOSE_TIMEOUT_S)
            if self._thread.is_alive():
                LOG.warning("input reader did not stop within %.0f s; leaving it", CLOSE_TIMEOUT_S)
                return False
        return True


class FileSource(_Feeder):
    """An audio file (anything soundfile decodes: wav, flac, ogg, mp3), streamed block by block."""

    def __init__(self, *, path: str | Path, channel: int | None = None, fast: bool = False) -> None:
        import soundfile

        self.path = Path(path)
        problem = file_problem(path=self.path)
        if problem:
            fix = "give a file with sound in it" if problem.startswith("empty") else "check the path"
            raise SourceError(f"--input {self.path}: {problem}; {fix}")
        try:
            self._file = soundfile.SoundFile(str(self.path))
        except decode_errors() as error:
            reason = decode_error_reason(error=error)
            raise SourceError(f"--input {self.path}: cannot decode audio ({reason}); use a wav, flac, ogg or mp3 file") from error
        if self._file.samplerate <= 0 or self._file.channels <= 0 or self._file.frames == 0:
            self._file.close()
            raise SourceError(f"--input {self.path}: the file holds no audio; give a file with sound in it")
        low, high = SAMPLERATE_RANGE_HZ
        if not low <= self._file.samplerate <= high:
            rate = self._file.samplerate
            self._file.close()
            raise SourceError(
                f"--input {self.path}: sample rate {rate} Hz is outside {low} to {high} Hz; resample the file"
            )
        channels = self._file.channels
        if channel is not None and not 0 <= channel < channels:
            self._file.close()
            raise SourceError(f"--channel {channel}: {self.path} has {channels} channel(s); use 0 to {channels - 1}")
        self._declared = declared_frames(path=self.path, handle=self._file)
        problem = shortfall_problem(decoded=self._file.frames, declared=self._declared, rate=self._file.samplerate)
        if problem:  # a WAV whose data chunk is cut short: known before playing it
            self._file.close()
            raise SourceError(f"--input {self.path}: {problem}; give the whole file")
        super().__init__(samplerate=self._file.samplerate, channels=self._file.channels, channel=channel, fast=fast)

    def _read(self, *, max_frames: int) -> np.ndarray:
        return self._file.read(max_frames, dtype="float32", always_2d=True)  # the worker cleans bad samples

    def _ended(self, *, fed: int) -> None:
        problem = shortfall_problem(decoded=fed, declared=self._declared, rate=self.samplerate)
        if problem:  # e.g. an MP3 whose header gives 15 s that decodes 0.4 s
            self.error = f"error: --input {self.path}: {problem}"

    def _skip(self, *, frames: int) -> int:
        before = self._file.tell()
        return self._file.seek(min(frames, max(0, self._file.frames - before)), whence=1) - before  # SEEK_CUR

    def close(self) -> None:
        """Stop the feeder; the file is closed only once the feeder has ended (never under a read)."""
        if super().close():
            self._file.close()


class ArraySource(_Feeder):
    """A signal in memory ``(num_samples,)`` or ``(num_samples, channels)`` at ``samplerate``."""

    def __init__(self, *, samples: np.ndarray, samplerate: float, fast: bool = False, channel: int | None = None) -> None:
        samples = np.asarray(samples, dtype=np.float32)
        self._samples = samples[:, None] if samples.ndim == 1 else samples
        self._position = 0
        super().__init__(samplerate=samplerate, channels=self._samples.shape[1], channel=channel, fast=fast)

    def _read(self, *, max_frames: int) -> np.ndarray:
        block = self._samples[self._position : self._position + max_frames]
        self._position += block.shape[0]
        return block

    def _skip(self, *, frames: int) -> int:
        skipped = min(frames, self._samples.shape[0] - self._position)
        self._position += skipped
        return skipped


def demo_source(*, fast: bool = False) -> ArraySource:
    """The synthesised demo piece (see :mod:`mer_live.live.demo`) as a source at the model rate."""
    from mer_live.live import demo
    from mer_live.features.spectrogram import SAMPLE_RATE

    return ArraySource(samples=demo.synthesise(), samplerate=SAMPLE_RATE, fast=fast)
