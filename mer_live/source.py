"""Where the audio comes from: a sound card (PortAudio via sounddevice), a file, or the demo piece.

Every source writes raw frames ``(num_frames, channels)`` float32 at its own rate into a preallocated
:class:`~mer_live.ring_buffer.RingBuffer` holding ``RING_SECONDS`` = 10 s of audio (220,500 frames at
the model rate; the buffer holds the source's frames before resampling, so 480,000 at a 48 kHz card);
the worker thread reads them from there. The sound-card callback only copies into the ring buffer and counts PortAudio's
overflow flags: no allocation of buffers, no locks, no I/O. File and demo sources feed the ring buffer
from a thread, paced in real time (as if played) or, with ``fast``, as fast as the worker consumes.

A sound card that vanishes (unplugged, or the JACK server died) makes :attr:`CaptureSource.lost` true.
PortAudio cannot always let go of such a stream (with JACK, closing it or terminating PortAudio
blocks for minutes), so the daemon restarts itself in place once the stream is abandoned, and the new
process opens the source in *resume* mode (:meth:`CaptureSource.resume_hint`): it waits for the same
device (same name and host API, channels and rate), rescanning every ``RECONNECT_INTERVAL_S``, and
starts capturing when it is back.

``sounddevice`` is imported lazily, so that tests can point ALSA or JACK at test devices first.
"""

from __future__ import annotations

import atexit
import difflib
import logging
import math
import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from . import features
from .rate_limit import RateLimitedLog
from .ring_buffer import RingBuffer
from .settings import SAMPLERATE_RANGE_HZ

LOG = logging.getLogger("mer_live")

RING_SECONDS = 10.0
MAX_MIX_CHANNELS = 2  # a sound card's mono mix uses at most its first two inputs (a file's uses all)
FEED_BLOCK_FRAMES = 1024
FAST_WAIT_S = 0.002
CLOSE_TIMEOUT_S = 2.0
CLOSE_MATCHES = 3
CLOSE_MATCH_CUTOFF = 0.4
RECONNECT_INTERVAL_S = 2.0  # while the input device is gone, look for it again this often
LOST_AFTER_S = 2.0  # a started stream that delivers no frames for this long counts as lost
RESCAN_TIMEOUT_S = 5.0  # re-initialising PortAudio (to see devices that came back) may take this long
RECONNECT_LOG_WINDOW_S = 30.0  # "still waiting for the device" is logged at most once per window
# sounddevice has no public way to re-scan devices or to let go of a wedged stream at exit, so the
# code below uses these private names, but only in the versions [low, high) that the tests cover
# (tests/test_capture_jack.py exercises them; tests/test_sounddevice_api.py checks the installed one).
SOUNDDEVICE_PRIVATE_API_VERSIONS = ((0, 4, 6), (0, 6))
SOUNDDEVICE_PRIVATE_NAMES = ("_initialized", "_initialize", "_terminate", "_exit_handler")


class SourceError(RuntimeError):
    """A source that cannot be opened; the message is one line naming the problem and the fix."""


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


# ------------------------------------------------------------------------------------------ devices


def _sounddevice():
    import sounddevice

    return sounddevice


def input_devices() -> list[dict]:
    """Every device with at least one input channel, as sounddevice describes them (with ``index``)."""
    try:
        sd = _sounddevice()
        devices = sd.query_devices()
    except OSError as error:  # PortAudio library missing
        raise SourceError(f"cannot load PortAudio ({error}); install libportaudio2, or use --input FILE or --demo") from error
    return [dict(device, index=index) for index, device in enumerate(devices) if device["max_input_channels"] > 0]


def list_devices() -> str:
    """A human-readable list of all devices, inputs marked (what ``-l/--list-devices`` prints).
    Raises :class:`SourceError` when PortAudio cannot be loaded."""
    inputs = input_devices()  # raises SourceError first when PortAudio is missing
    lines = [str(_sounddevice().query_devices())]
    if not inputs:
        lines.append("no input devices: use --input FILE or --demo")
    return "\n".join(lines)


def _no_inputs_error() -> SourceError:
    return SourceError("no audio input device found; run with --input FILE or --demo, or connect a sound card (-l lists devices)")


def find_input_device(*, spec: str) -> dict:
    """The input device named by ``spec``: a numeric id, a name substring, or "" for the default.

    Raises :class:`SourceError` listing close matches when nothing (or more than one) matches.
    """
    inputs = input_devices()
    if not inputs:
        raise _no_inputs_error()
    spec = str(spec).strip()
    if spec == "":
        default = _sounddevice().default.device[0]
        for device in inputs:
            if device["index"] == default:
                return device
        return inputs[0]
    names = ", ".join(f"{d['index']}: {d['name']!r}" for d in inputs)
    if spec.lstrip("-").isdigit():
        for device in inputs:
            if device["index"] == int(spec):
                return device
        raise SourceError(f"no input device with id {spec}; inputs are {names} (-l lists devices)")
    matches = [d for d in inputs if spec.lower() in d["name"].lower()]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        listed = ", ".join(f"{d['index']}: {d['name']!r}" for d in matches)
        raise SourceError(f"input device {spec!r} is ambiguous: it matches {listed}; pass the numeric id with -d")
    by_name = {d["name"]: d for d in inputs}
    close = difflib.get_close_matches(spec, list(by_name), n=CLOSE_MATCHES, cutoff=CLOSE_MATCH_CUTOFF)
    close += [name for name in by_name if name not in close and any(w and w.lower() in name.lower() for w in spec.split())]
    if close:
        suggestion = ", ".join(f"{by_name[n]['index']}: {n!r}" for n in close[:CLOSE_MATCHES])
        raise SourceError(f"no input device matches {spec!r}; close matches: {suggestion} (-l lists devices)")
    raise SourceError(f"no input device matches {spec!r}; inputs are {names} (-l lists devices)")


def _hostapi_name(*, device: dict) -> str:
    return str(_sounddevice().query_hostapis(device["hostapi"])["name"])


def _version(*, text: str) -> tuple[int, ...]:
    """``"0.5.6"`` -> ``(0, 5, 6)``; stops at the first part that is not a number (``"1.0rc1"`` -> ``(1,)``)."""
    parts = []
    for part in text.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def private_api_supported(*, sd=None) -> bool:
    """Whether this sounddevice is a version whose private names (:data:`SOUNDDEVICE_PRIVATE_NAMES`)
    the tests cover, within :data:`SOUNDDEVICE_PRIVATE_API_VERSIONS`, and has them all."""
    sd = sd if sd is not None else _sounddevice()
    low, high = SOUNDDEVICE_PRIVATE_API_VERSIONS
    version = _version(text=str(getattr(sd, "__version__", "")))
    return low <= version < high and all(hasattr(sd, name) for name in SOUNDDEVICE_PRIVATE_NAMES)


def rescan_devices() -> None:
    """Re-initialise PortAudio so that it sees devices that appeared since it started (PortAudio
    enumerates devices once, at initialisation). Only safe while this process has no open stream.
    Raises :class:`SourceError` if PortAudio fails or hangs (it is given ``RESCAN_TIMEOUT_S``), or if
    this sounddevice is not a version whose private re-initialisation is tested."""
    sd = _sounddevice()
    if not private_api_supported(sd=sd):
        raise SourceError(
            f"sounddevice {getattr(sd, '__version__', '?')} is not a version mer-live can re-scan devices with; "
            "restart mer-live when the device is back"
        )
    errors: list[str] = []

    def _reinitialise() -> None:
        try:
            # private, but sounddevice offers no public re-scan; after a failed _initialize()
            # PortAudio is down already and must not be terminated again
            if sd._initialized > 0:
                sd._terminate()
            sd._initialize()
        except (sd.PortAudioError, OSError) as error:
            errors.append(str(error))

    worker = threading.Thread(target=_reinitialise, name="mer-live-rescan", daemon=True)
    worker.start()
    worker.join(RESCAN_TIMEOUT_S)
    if worker.is_alive():
        raise SourceError(f"PortAudio did not re-initialise within {RESCAN_TIMEOUT_S:.0f} s")
    if errors:
        raise SourceError(f"PortAudio could not re-initialise ({errors[0]})")


class CaptureSource:
    """A sound-card input: ``sounddevice.InputStream`` in callback mode feeding the ring buffer.

    ``channel`` ``K`` opens ``K + 1`` channels and takes channel ``K``; ``None`` opens up to
    ``MAX_MIX_CHANNELS`` and mixes them to mono. ``samplerate`` 0 uses the device's own rate.
    """

    realtime = True

    def __init__(
        self, *, device: str = "", channel: int | None = None, samplerate: float = 0, resume: dict | None = None
    ) -> None:
        """``resume`` (a :meth:`resume_hint` of a source in an earlier process) waits for that device
        instead of looking ``device`` up now: it may still be gone."""
        self._lock = threading.Lock()  # guards the stream between the reconnect thread and close()
        self._stop = threading.Event()
        self._reconnect: threading.Thread | None = None
        self._log = RateLimitedLog(logger=LOG, window_s=RECONNECT_LOG_WINDOW_S)
        self._status_overflows = 0
        self._stream = None
        self._closed = False
        self._last_written = 0
        self._last_progress = time.monotonic()
        if resume is not None:
            self.channel = channel
            self.channels = int(resume["channels"])
            self.samplerate = float(resume["samplerate"])
            self.device = {"name": str(resume["name"]), "hostapi_name": str(resume["hostapi"]), "index": None}
            self.ring = RingBuffer(capacity=ring_capacity(samplerate=self.samplerate), channels=self.channels)
            return
        self.device = find_input_device(spec=device)
        available = int(self.device["max_input_channels"])
        if channel is not None and not 0 <= channel < available:
            raise SourceError(
                f"--channel {channel}: device {self.device['name']!r} has {available} input channel(s); "
                f"use 0 to {available - 1}, or leave it out for a mono mix"
            )
        self.channel = channel
        self.channels = channel + 1 if channel is not None else min(available, MAX_MIX_CHANNELS)
        self.samplerate = float(samplerate) if samplerate else float(self.device["default_samplerate"])
        low, high = SAMPLERATE_RANGE_HZ
        if not low <= self.samplerate <= high:
            raise SourceError(
                f"device {self.device['name']!r} runs at {self.samplerate:g} Hz, outside {low} to {high} Hz; "
                "pass --samplerate with a rate it supports in that range"
            )
        sd = _sounddevice()
        try:
            sd.check_input_settings(device=self.device["index"], channels=self.channels, samplerate=self.samplerate, dtype="float32")
        except (sd.PortAudioError, ValueError) as error:
            raise SourceError(
                f"device {self.device['name']!r} cannot capture {self.channels} channel(s) at {self.samplerate:g} Hz "
                f"({error}); try another --samplerate or --channel"
            ) from error
        self.device["hostapi_name"] = _hostapi_name(device=self.device)
        self.ring = RingBuffer(capacity=ring_capacity(samplerate=self.samplerate), channels=self.channels)

    def resume_hint(self) -> dict:
        """What a new process needs to wait for this same device: ``CaptureSource(resume=hint)``."""
        return {
            "name": self.device["name"],
            "hostapi": self.device["hostapi_name"],
            "channels": self.channels,
            "samplerate": self.samplerate,
        }

    def _callback(self, indata, frames, time_info, status) -> None:  # noqa: ARG002 (PortAudio's signature)
        """Runs on PortAudio's thread: copy into the ring buffer and count overflow flags, nothing else."""
        if status.input_overflow:
            self._status_overflows += 1
        self.ring.write(frames=indata)

    def _open_stream(self) -> None:
        sd = _sounddevice()
        stream = None
        try:
            stream = sd.InputStream(
                device=self.device["index"],
                channels=self.channels,
                samplerate=self.samplerate,
                dtype="float32",
                callback=self._callback,
            )
            stream.start()
        except (sd.PortAudioError, ValueError) as error:
            if stream is not None:
                stream.close(ignore_errors=True)
            raise SourceError(f"cannot start capture on {self.device['name']!r} ({error}); check the device or use --input/--demo") from error
        with self._lock:
            if not self._closed:
                self._stream, stream = stream, None
                self._last_written, self._last_progress = self.ring.written, time.monotonic()
        if stream is not None:  # closed meanwhile
            stream.close(ignore_errors=True)

    def start(self) -> None:
        """Open and start the stream; in resume mode, start waiting for the device instead."""
        if self.device["index"] is not None:
            self._open_stream()
            return
        self._reconnect = threading.Thread(target=self._wait_for_device, name="mer-live-reconnect", daemon=True)
        self._reconnect.start()

    def _find_again(self) -> dict:
        """The device of the hint, after a rescan; raises :class:`SourceError` while it is missing."""
        rescan_devices()
        for device in input_devices():
            if device["name"] == self.device["name"] and _hostapi_name(device=device) == self.device["hostapi_name"]:
                if device["max_input_channels"] < self.channels:
                    raise SourceError(f"it is back with only {device['max_input_channels']} input channel(s)")
                return device
        raise SourceError(f"no input device named {self.device['name']!r} on {self.device['hostapi_name']}")

    def _wait_for_device(self) -> None:
        """Resume mode, on its own thread: every ``RECONNECT_INTERVAL_S`` look for the device and open it."""
        name = self.device["name"]
        LOG.warning("waiting for input device %r to come back (checking every %.0f s)", name, RECONNECT_INTERVAL_S)
        while not self._stop.is_set():
            try:
                found = self._find_again()
                self.device = dict(found, hostapi_name=self.device["hostapi_name"])
                self._open_stream()
            except SourceError as error:
                self._log.log(key="reconnect", message=f"input device {name!r} is still gone: {error}")
                self._stop.wait(RECONNECT_INTERVAL_S)
                continue
            LOG.warning("input device %r is back (id %d); capturing again", name, self.device["index"])
            return

    @property
    def finished(self) -> bool:
        return False

    @property
    def active(self) -> bool:
        stream = self._stream
        return stream is not None and not self._closed and bool(stream.active)

    @property
    def lost(self) -> bool:
        """The stream was running and the device has gone: PortAudio stopped the stream, or no frame
        has arrived for ``LOST_AFTER_S``. (Polled by one thread, the daemon's main loop.)"""
        stream = self._stream
        if stream is None or self._closed:
            return False
        if not stream.active:
            return True
        now, written = time.monotonic(), self.ring.written
        if written != self._last_written:
            self._last_written, self._last_progress = written, now
        return now - self._last_progress >= LOST_AFTER_S

    @property
    def overflows(self) -> int:
        return self._status_overflows + self.ring.overruns

    def close(self) -> None:
        """Stop and close the stream. A vanished device can make PortAudio hang, so this waits at most
        ``CLOSE_TIMEOUT_S`` on a helper thread and then gives up on the stream."""
        self._stop.set()
        if self._reconnect is not None:
            self._reconnect.join(RESCAN_TIMEOUT_S + CLOSE_TIMEOUT_S)
        with self._lock:
            stream, self._stream = self._stream, None
            self._closed = True
        if stream is None:
            return

        def _close() -> None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # noqa: BLE001 - a dying backend may raise anything; nothing more to do
                pass

        closer = threading.Thread(target=_close, name="mer-live-close", daemon=True)
        closer.start()
        closer.join(CLOSE_TIMEOUT_S)
        if closer.is_alive():
            # The backend is wedged (e.g. the JACK server died). PortAudio's own exit handler would
            # hang the same way, so the stream is abandoned and the handler is not run at exit.
            LOG.warning("input stream did not close within %.0f s (device gone?); abandoning it", CLOSE_TIMEOUT_S)
            sd = _sounddevice()
            if private_api_supported(sd=sd):
                atexit.unregister(sd._exit_handler)


# --------------------------------------------------------------------------------- files and the demo


class _Feeder:
    """Feeds frames from ``read(n) -> (m <= n, channels)`` into a ring buffer on a thread.

    Real time: a block is written when its last frame would have been played (like a sound card). Fast: blocks are
    written as soon as the ring buffer has room (nothing is dropped).
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

    def _run(self) -> None:
        start = time.monotonic()
        fed = 0
        try:
            while not self._stop.is_set():
                block = self._read(max_frames=FEED_BLOCK_FRAMES)
                if block.shape[0] == 0:
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
        problem = features.file_problem(path=self.path)
        if problem:
            fix = "give a file with sound in it" if problem.startswith("empty") else "check the path"
            raise SourceError(f"--input {self.path}: {problem}; {fix}")
        try:
            self._file = soundfile.SoundFile(str(self.path))
        except features.decode_errors() as error:
            reason = features.decode_error_reason(error=error)
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
        super().__init__(samplerate=self._file.samplerate, channels=self._file.channels, channel=channel, fast=fast)

    def _read(self, *, max_frames: int) -> np.ndarray:
        return self._file.read(max_frames, dtype="float32", always_2d=True)  # the worker cleans bad samples

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


def demo_source(*, fast: bool = False) -> ArraySource:
    """The synthesised demo piece (see :mod:`mer_live.demo`) as a source at the model rate."""
    from . import demo
    from .features import SAMPLE_RATE

    return ArraySource(samples=demo.synthesise(), samplerate=SAMPLE_RATE, fast=fast)
