"""The worker thread: ring buffer -> mono -> streaming resampling -> the model stage
(:mod:`mer_live.model.inference`: v1 new spectrogram frames -> rolling 10 s window -> ONNX model; v2 log-mel
frames -> each 3 s patch through the model once -> recency-weighted pooling) -> smoothing -> every sink.

Updates happen on a schedule in *stream time* (input frames consumed / input rate): update ``k`` uses
exactly the audio up to ``k / rate`` seconds, whatever the timing of its arrival. So a file run with
``--fast`` gives the same readings as the same file played in real time, and a live update equals the
offline analysis of the same samples: for v1, the model input of an update that has ``F`` complete
frames is ``features.window_at`` over the offline frames ``max(0, F - NUM_FRAMES) .. F - 1``; for v2,
the pooled value is :func:`mer_live.model.pooling.pool` of the offline patches that end by frame ``F``.

Per update:

1. read the new input frames from the ring buffer, take the chosen channel or the mono mix, measure
   the level (RMS dBFS of those samples) for the silence gate and the status;
2. resample to the front-end's rate (v1 22,050 Hz, v2 16 kHz) with one ``soxr.ResampleStream``
   (streaming, never per window; skipped when the input already is at that rate);
3. the model stage computes only the frames that became complete (v1: and keeps the last 313 = 10 s;
   v2: and runs the model on each 3 s patch that became complete, once);
4. *warming up*: until the model's input is full of real audio (v1 10 s, v2 3 s), it is filled by
   looping the frames that exist from the start (as for short clips offline), so the model sees a
   full-length input of real material at the real level, and the state is ``warming``. The first reading
   comes with the first update that has a complete frame (after ``1 / rate`` s);
5. the model stage gives the 7 mid-level features and 8 emotions (model units; v2: pooled over the
   recent patches, a weighted mean, so emotion stays the Joint layer of mid); the mid-level features are
   smoothed (:class:`~mer_live.live.smoother.Smoother`: a time constant in seconds that shortens while the
   mid-level features move, one gain for all seven; held while the level is below the silence gate) and
   the sent emotions are the Joint layer applied to the smoothed mid-level features, which is exactly
   the smoothed model emotion (the layer is affine and the smoother's output a convex combination of
   the raw vectors) and makes ``bias + sum(contributions) == emotion`` hold exactly. The raw model
   values go to the sinks too;
6. a :class:`~mer_live.core.reading.Reading` goes to every sink.

A real-time source never gets a burst of stale updates: when the ring buffer has lost frames (the
source skipped ahead after a stall, or the buffer overflowed), or this thread did not run for more than
``STALL_S`` and as much audio waits (the process was stopped or starved), the worker drops what is buffered, moves the stream time on by all
the audio it did not analyse (so stream time keeps pace with the clock), logs how much, and warms up
again on the fresh audio; the schedule restarts there.

When no update happens for ``HEARTBEAT_S`` a status-only reading goes out (state ``no-input`` if no
audio has arrived for ``NO_INPUT_S``). Control changes (:class:`~mer_live.control.server.ControlTarget`) are
queued under a lock by any thread and applied whole by the worker between updates.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from typing import Protocol

import numpy as np

from mer_live import __version__
from mer_live.features import spectrogram
from mer_live.model import inference
from mer_live.core import labels
from mer_live.model.explanation import explain
from mer_live.model.emotion_model import EmotionModel
from mer_live.core.rate_limit import RateLimitedLog
from mer_live.core.reading import (
    LEVEL_FLOOR_DBFS,
    STATE_NO_INPUT,
    STATE_RUNNING,
    STATE_SILENT,
    STATE_WARMING,
    Reading,
    level_dbfs,
)
from mer_live.config.settings import AnalysisSettings, InputSettings, check_value, live_settings
from mer_live.live.smoother import Smoother
from mer_live.live.source import STALL_S, Source

LOG = logging.getLogger("mer_live")

HEARTBEAT_S = 1.0
NO_INPUT_S = 1.0
MAX_WAIT_S = 0.05
MIN_WAIT_S = 0.001
TIMING_HISTORY = 100_000
STOP_TIMEOUT_S = 5.0
MAX_ABS_SAMPLE = 1e3  # input samples are clipped to +-this (full scale is 1): no float32 overflow downstream


class Sink(Protocol):
    def process(self, *, reading: Reading) -> None: ...

    def close(self) -> None: ...


class Worker:
    """Runs the analysis on its own thread; implements the control port's ``ControlTarget``."""

    def __init__(
        self,
        *,
        source: Source,
        model: EmotionModel,
        sinks: list[Sink],
        rate: float = AnalysisSettings.rate,
        smoothing_s: float = AnalysisSettings.smoothing,
        follow: float = AnalysisSettings.follow,
        still_speed: float = AnalysisSettings.still_speed,
        change: float = AnalysisSettings.change,
        silence_dbfs: float = AnalysisSettings.silence_dbfs,
        duration_s: float = InputSettings.duration,
    ) -> None:
        self._source = source
        self._model = model
        self._sinks = list(sinks)
        self._silence_dbfs = float(silence_dbfs)
        self._duration_s = float(duration_s)
        self._samplerate = float(source.samplerate)
        self._inference = inference.for_model(model=model, wait=not source.realtime)  # live: never wait on a late patch
        self._resampler = None
        if self._samplerate != self._inference.sample_rate:
            import soxr

            self._resampler = soxr.ResampleStream(
                self._samplerate, self._inference.sample_rate, 1, dtype="float32", quality="HQ"
            )
        self._mid = Smoother(
            size=labels.NUM_MID_LEVELS, time_constant_s=_checked("smoothing", smoothing_s),
            follow=_checked("follow", follow), still_speed=_checked("still_speed", still_speed),
            speed_scale=labels.MID_MODEL_SPAN,  # speeds in the sent 0-1 units
            change_threshold=_checked("change", change),
            change_basis=np.asarray(model.weight, dtype=np.float64) / labels.EMOTION_MODEL_SPAN,  # emotion 0-1 units
        )
        self._lock = threading.Lock()
        initial = {"rate": rate, "smoothing": smoothing_s, "follow": follow, "still_speed": still_speed, "change": change}
        self._pending: dict[str, float | bool] = {key: _checked(key, initial[key]) for key in LIVE_KEYS}
        self._pending["muted"] = False
        self._reset_requested = False
        self._rate = self._pending["rate"]
        self._muted = False
        self._consumed = 0
        self._updates = 0
        self._last_update_s = 0.0
        self._epoch_frame = 0  # the schedule restarts here (input frame) when the rate changes
        self._epoch_updates = 0
        self._level = LEVEL_FLOOR_DBFS
        self._state = STATE_WARMING
        self._raw_mid: np.ndarray | None = None
        self._raw_emotion: np.ndarray | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._skipped_seen = self._dropped_seen = 0  # the ring buffer's counters already accounted for
        self.skipped_s = 0.0  # audio skipped after stalls
        self._log = RateLimitedLog(logger=LOG)  # at most one line per kind of trouble per 10 s
        self.compute_times_s: collections.deque[float] = collections.deque(maxlen=TIMING_HISTORY)
        self.error: str | None = None
        self.finished = threading.Event()

    # ------------------------------------------------------------------ ControlTarget (any thread)

    def set_setting(self, *, key: str, value: float) -> None:
        """Check ``value`` against the live setting ``key`` (one of ``LIVE_KEYS``), then hand it to the next
        update."""
        if key not in LIVE_KEYS:
            raise KeyError(f"{key} is not a live setting (live: {', '.join(LIVE_KEYS)})")
        value = _checked(key, value)
        with self._lock:
            self._pending[key] = value

    def reset_smoothing(self) -> None:
        with self._lock:
            self._reset_requested = True

    def set_muted(self, *, muted: bool) -> None:
        with self._lock:
            self._pending["muted"] = bool(muted)

    def current_config(self) -> dict[str, float | int | str | bool]:
        with self._lock:
            pending = dict(self._pending)
        return {
            **{key: pending[key] for key in LIVE_KEYS},
            "muted": pending["muted"],
            "silence_dbfs": self._silence_dbfs,
            "state": self._state,
            "updates": self._updates,
            "overflows": int(self._source.overflows),
            "model": self._model.variant,
            "version": __version__,
        }

    def _apply_pending(self) -> None:
        """Apply every queued control change at once (worker thread, between updates)."""
        with self._lock:
            pending = dict(self._pending)
            reset, self._reset_requested = self._reset_requested, False
        self._mid.set_time_constant(seconds=pending["smoothing"])
        self._mid.set_follow(follow=pending["follow"])
        self._mid.set_still_speed(speed=pending["still_speed"])
        self._mid.set_change_threshold(threshold=pending["change"])
        if pending["rate"] != self._rate:
            self._rate = pending["rate"]
            self._epoch_frame, self._epoch_updates = self._consumed, self._updates
        self._muted = pending["muted"]
        if reset:
            self._mid.reset()

    # ------------------------------------------------------------------ status

    @property
    def state(self) -> str:
        return self._state

    @property
    def updates(self) -> int:
        return self._updates

    @property
    def stream_time_s(self) -> float:
        return self._consumed / self._samplerate

    # ------------------------------------------------------------------ the pipeline

    def _next_target(self) -> int:
        """The input frame at which the next update is due: ``k / rate`` seconds after the epoch,
        computed from the update index so that rounding never accumulates."""
        steps = self._updates - self._epoch_updates + 1
        return self._epoch_frame + max(1, round(steps * self._samplerate / self._rate))

    def _advance(self, *, num_frames: int, last: bool = False) -> None:
        """Consume ``num_frames`` input frames: level, resampling, new spectrogram frames."""
        block = self._source.ring.read(max_frames=num_frames)
        self._consumed += block.shape[0]
        mono = spectrogram.to_mono(audio=block, channel=self._source.channel)
        if not np.all(np.isfinite(mono)):
            mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
        mono = np.clip(mono, -MAX_ABS_SAMPLE, MAX_ABS_SAMPLE)
        if len(mono):  # an empty read (end of file) keeps the last level
            # AC level: a constant offset (DC) is no sound and must not open the silence gate
            self._level = level_dbfs(samples=mono - np.mean(mono, dtype=np.float64))
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono, last=last)
        self._inference.process(samples=mono, last=last)

    def _update(self, *, started: float) -> None:
        """One update at the current stream time: model, smoothing, sinks."""
        stream_time = self.stream_time_s
        dt = stream_time - self._last_update_s
        self._last_update_s = stream_time
        self._updates += 1
        gate_open = self._level >= self._silence_dbfs
        if self._inference.has_frames:
            prediction = self._inference.predict()
            if np.all(np.isfinite(prediction.mid[0])) and np.all(np.isfinite(prediction.emotion[0])):
                self._raw_mid = prediction.mid[0]
                self._raw_emotion = prediction.emotion[0]
                self._mid.process(values=self._raw_mid, dt=dt, gate_open=gate_open)
            else:  # a NaN/inf would stay in the smoother for good: keep the last values instead
                self._log.log(
                    key="non-finite",
                    message=f"the model gave a non-finite output at {stream_time:.2f} s; keeping the last values",
                )
        if not gate_open:
            self._state = STATE_SILENT
        elif not self._inference.is_full:
            self._state = STATE_WARMING
        else:
            self._state = STATE_RUNNING
        self._emit(reading=self._reading(is_update=True))
        self.compute_times_s.append(time.perf_counter() - started)

    def _reading(self, *, is_update: bool, state: str | None = None) -> Reading:
        reading = Reading(
            stream_time_s=self.stream_time_s,
            wall_time=time.time(),
            state=state or self._state,
            level_dbfs=LEVEL_FLOOR_DBFS if state == STATE_NO_INPUT else self._level,
            overflows=int(self._source.overflows),
            updates=self._updates,
            is_update=is_update,
            muted=self._muted,
        )
        if is_update and self._mid.has_value:
            smoothed_mid = self._mid.smoothed
            explanation = explain(mid=smoothed_mid, weight=self._model.weight, bias=self._model.bias)
            reading.emotion_unclipped = explanation.emotion
            reading.emotion = np.clip(explanation.emotion, 0.0, 1.0)
            reading.mid = np.clip(labels.mid_to_unit(model_values=smoothed_mid), 0.0, 1.0)
            reading.raw_emotion = np.clip(labels.emotion_to_unit(model_values=self._raw_emotion), 0.0, 1.0)
            reading.raw_mid = np.clip(labels.mid_to_unit(model_values=self._raw_mid), 0.0, 1.0)
            reading.contributions = explanation.contributions
            reading.bias = explanation.bias
        return reading

    def _emit(self, *, reading: Reading) -> None:
        for sink in self._sinks:
            try:
                sink.process(reading=reading)
            except Exception as error:  # noqa: BLE001 - no sink may stop the daemon
                self._log.log(key=f"sink {type(sink).__name__}", message=f"{type(sink).__name__} failed ({error}); carrying on")

    def _start_afresh(self) -> None:
        """The source reconnected (a sound card that came back): forget the old audio, so the analysis
        warms up again on the new one. The update count, the stream time and the schedule go on."""
        self._inference.reset()
        self._mid.reset()
        if self._resampler is not None:
            self._resampler.clear()
        self._state = STATE_WARMING

    def _lost_frames(self, *, paused_s: float) -> int | None:
        """After a stall, the input frames that were not (and will not be) analysed; None if this
        real-time run did not fall behind. A stall: the source skipped frames after its own stall
        (:attr:`RingBuffer.skipped`), or this thread did not run for more than ``STALL_S`` and more than
        ``STALL_S`` of audio waits or the buffer overflowed meanwhile. Overflows while this thread ran
        (a producer faster than real time, such as a test PCM) are counted as overflows, as before."""
        ring = self._source.ring
        skipped, dropped = ring.skipped, ring.dropped
        new_skipped, new_dropped = skipped - self._skipped_seen, dropped - self._dropped_seen
        self._skipped_seen, self._dropped_seen = skipped, dropped
        stalled = paused_s > STALL_S and (new_dropped > 0 or ring.available() > STALL_S * self._samplerate)
        if not (new_skipped > 0 or stalled):
            return None
        return new_skipped + (new_dropped if stalled else 0)

    def _jump_to_present(self, *, lost: int) -> None:
        """After a stall: drop the buffered audio, move the stream time on by it and the ``lost``
        frames, and start the analysis and the schedule afresh there."""
        ring = self._source.ring
        skipped = lost + ring.discard(max_frames=ring.available())
        self._consumed += skipped
        self.skipped_s += skipped / self._samplerate
        self._start_afresh()
        self._epoch_frame, self._epoch_updates = self._consumed, self._updates
        self._last_update_s = self.stream_time_s
        LOG.warning(
            "stall: %.1f s of audio skipped to catch up with the present (the process was stopped or starved "
            "of CPU); warming up again", skipped / self._samplerate,
        )

    def run(self) -> None:
        """The worker loop (on the worker thread after :meth:`start`, or called directly)."""
        ring = self._source.ring
        last_emit = time.monotonic()
        last_data = last_emit
        last_written = ring.written
        generation = getattr(self._source, "generation", 0)  # see CaptureSource.generation
        self._skipped_seen, self._dropped_seen = ring.skipped, ring.dropped
        last_loop = time.monotonic()
        try:
            while not self._stop.is_set():
                self._apply_pending()
                now = time.monotonic()
                paused_s, last_loop = now - last_loop, now
                lost = self._lost_frames(paused_s=paused_s) if self._source.realtime else None
                if lost is not None:
                    self._jump_to_present(lost=lost)
                if getattr(self._source, "generation", 0) != generation:
                    generation = self._source.generation
                    if self._consumed:
                        self._start_afresh()
                end = round(self._duration_s * self._samplerate) if self._duration_s else math.inf
                if self._consumed >= end:
                    break
                target = min(self._next_target(), end)
                need = target - self._consumed
                finished = self._source.finished  # read before available(): no frames can be missed
                available = ring.available()
                if available >= need:
                    started = time.perf_counter()
                    self._advance(num_frames=need)
                    self._update(started=started)
                    last_emit = time.monotonic()
                    continue
                if finished:
                    started = time.perf_counter()
                    self._advance(num_frames=available, last=True)
                    if available > 0 or self._updates == 0:  # a file ending on an update: no second row at that time
                        self._update(started=started)
                    break
                now = time.monotonic()
                if ring.written != last_written:
                    last_written, last_data = ring.written, now
                if now - last_emit >= HEARTBEAT_S:
                    no_input = not self._source.active or now - last_data >= NO_INPUT_S
                    self._emit(reading=self._reading(is_update=False, state=STATE_NO_INPUT if no_input else None))
                    last_emit = now
                wait = (need - available) / self._samplerate if self._source.realtime else 0.0
                self._stop.wait(min(MAX_WAIT_S, max(wait, MIN_WAIT_S)))
        except Exception as error:  # noqa: BLE001 - reported by the daemon as one line, exit 1
            self.error = f"worker stopped: {type(error).__name__}: {error}"
            LOG.error("%s", self.error)
        finally:
            self.finished.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="mer-live-worker", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the worker thread is (still) running."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> bool:
        """Ask the loop to end after the current update and wait for it (at most ``STOP_TIMEOUT_S``).
        Returns whether the thread has ended (True too when it was never started)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
        return not self.alive

    def final_status(self) -> None:
        """Send a last status (state ``no-input``: the input has stopped) to every sink."""
        self._emit(reading=self._reading(is_update=False, state=STATE_NO_INPUT))

    def close(self) -> None:
        """Stop the thread, then close every sink; a thread that does not stop keeps its sinks open
        (closing them under it would race its writes)."""
        if not self.stop():
            LOG.error("the analysis thread did not stop within %.0f s; leaving its outputs open", STOP_TIMEOUT_S)
            return
        for sink in self._sinks:
            try:
                sink.close()
            except Exception as error:  # noqa: BLE001 - closing must reach every sink
                LOG.warning("%s: close failed (%s)", type(sink).__name__, error)
        self._inference.close()
        self._mid.close()


LIVE_KEYS = tuple(live_settings())  # rate, smoothing, follow, still_speed, change: what the control port may set


def _checked(key: str, value: float) -> float:
    """``value`` as a float within the limits of the ``[analysis]`` setting ``key``, else ValueError
    (:class:`~mer_live.config.settings.ConfigError`): the same check as the TOML file's and the control port's."""
    return float(check_value(section=live_settings()[key][0], key=key, value=value))
