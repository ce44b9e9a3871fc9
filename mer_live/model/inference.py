"""The live model stage: mono audio at the front-end's rate -> frames -> model inputs -> one prediction
per update. One class per front-end, both with ``process`` / ``predict`` / ``reset`` / ``close``:

* :class:`WindowInference` (v1): the log-spectrogram frames of :mod:`mer_live.features.spectrogram`; each update runs
  the model on the last 10 s (loop-padded while fewer exist);
* :class:`PatchInference` (v2): musicnn log-mel frames (:mod:`mer_live.features.mel`); the model runs on
  each 3 s patch **once**, as soon as its last frame has arrived, every ``patch_hop_frames`` frames
  (patch ``j`` = frames ``j * H .. j * H + 186``), batched when one chunk of audio completes several,
  on a thread of its own so that no update waits for it. An update pools the patch outputs that were
  handed over at least ``PATCH_LAG_S`` (0.25 s) of audio earlier (:mod:`mer_live.model.pooling`). While the first patch is incomplete
  (warm-up, < 3 s), the frames that exist are loop-padded to a patch and run once per patch hop (and
  at the first frame), so the first reading still comes with the first update.

:func:`for_model` picks the stage for a loaded :class:`~mer_live.model.emotion_model.EmotionModel`. Only the worker
thread calls these.
"""

from __future__ import annotations

import collections
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from mer_live.features import spectrogram, mel
from mer_live.core import labels
from mer_live.model.emotion_model import EmotionModel, Prediction
from mer_live.model.pooling import PatchPool

_OUTPUTS = labels.NUM_MID_LEVELS + labels.NUM_EMOTIONS  # a pooled row holds mid (7) then emotion (8)
PATCH_LAG_S = 0.25  # a patch's output is pooled from this much audio after it was handed to the patch thread
PATCH_LAG_FRAMES = round(PATCH_LAG_S * mel.FPS)  # 16 frames
MAX_BACKLOG = 4  # model calls queued on the patch thread, at most; older queued ones are dropped (overload)


class WindowInference:
    """v1: a rolling 10 s window of :mod:`mer_live.features.spectrogram` frames, the model run at every update."""

    sample_rate = spectrogram.SAMPLE_RATE

    def __init__(self, *, model: EmotionModel) -> None:
        self._model = model
        self._frames = spectrogram.FrameStream()
        self._rolling = spectrogram.RollingWindow()

    @property
    def frames_emitted(self) -> int:
        """Spectrogram frames computed so far (the flushed ones included)."""
        return self._frames.frames_emitted

    @property
    def has_frames(self) -> bool:
        return self._rolling.filled > 0

    @property
    def is_full(self) -> bool:
        """Whether the model sees only real audio (no loop-padding): 10 s have arrived."""
        return self._rolling.is_full

    def process(self, *, samples: np.ndarray, last: bool = False) -> None:
        """Add mono ``samples`` ``(num_samples,)`` at :attr:`sample_rate`; ``last`` flushes the stream."""
        new = self._frames.process(samples=samples)
        if last:
            new = spectrogram.FrameBlock.concatenate(blocks=[new, self._frames.flush()])
        self._rolling.process(block=new)

    def predict(self) -> Prediction:
        """The model on the current window: ``mid (1, 7)``, ``emotion (1, 8)``."""
        return self._model.process(windows=self._rolling.window())

    def reset(self) -> None:
        self._frames.reset()
        self._rolling.reset()

    def close(self) -> None:
        self._frames.close()
        self._rolling.close()


class PatchInference:
    """v2: log-mel frames, each 3 s patch run once as it completes (on the patch thread), recency-weighted
    pooling per update.

    The model runs on its own thread (one ``ThreadPoolExecutor`` worker), so an update does not wait for
    the patches that have just completed: an update with ``F`` frames pools the patches that were handed
    over when at most ``F - PATCH_LAG_FRAMES`` frames had arrived (``PATCH_LAG_S`` = 0.25 s of audio
    earlier; it waits for any of those that is still running, which only happens when a patch takes
    longer than that). Which patches an update pools depends on stream time only, never on timing
    (``--fast`` equals real time). Exceptions: the first reading waits for its warm-up patch, and the
    update after the end of the stream waits for everything. With ``wait=False`` (live input, a file
    paced in real time) an update never waits for a patch that is still running after that lag (an
    overloaded machine): it pools what has finished and takes the late patch at a later update, so the
    readings come on time and a little later than ``--fast`` would give them, instead of late. At most
    ``MAX_BACKLOG`` model calls wait on the patch thread: on a machine too slow for the model, older
    queued patches are dropped (counted), so neither memory nor the delay grows.
    """

    sample_rate = mel.SAMPLE_RATE

    def __init__(self, *, model: EmotionModel, wait: bool = True) -> None:
        if model.pooling is None:
            raise ValueError("PatchInference needs a v2 model (with pooling metadata)")
        self._model = model
        self._wait = wait
        self.late = 0  # updates at which a due patch was still running and was left for later (wait=False)
        self.dropped = 0  # queued patches dropped because the patch thread fell MAX_BACKLOG calls behind
        self._hop = model.pooling.patch_hop_frames
        self._stream = mel.MelStream()
        self._recent = np.zeros((mel.PATCH_FRAMES, mel.NUM_BANDS), dtype=mel.FEATURE_DTYPE)
        self._pool = PatchPool(pooling=model.pooling, size=_OUTPUTS)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mer-live-patches")
        self._jobs: collections.deque[tuple[Future, bool, int]] = collections.deque()  # (future, warm-up?, frames then)
        self._warm_up: Prediction | None = None
        self._warm_up_frames: int | None = None  # frames that the last warm-up patch was made of
        self._real_submitted = 0
        self._final = False
        self.patches_run = 0  # model inputs run (real patches and warm-up patches)
        self.non_finite = 0  # patches whose output was not finite (left out of the pool)

    @property
    def frames_emitted(self) -> int:
        """Log-mel frames computed so far (the flushed ones included)."""
        return self._stream.frames_emitted

    @property
    def has_frames(self) -> bool:
        return self._stream.frames_emitted > 0

    @property
    def is_full(self) -> bool:
        """Whether a complete 3 s patch has been pooled (the warm-up is over)."""
        return self._pool.count > 0

    def process(self, *, samples: np.ndarray, last: bool = False) -> None:
        """Add mono ``samples`` at 16 kHz; hand every patch that became complete to the patch thread."""
        new = self._stream.process(samples=samples)
        if last:
            new = np.concatenate([new, self._stream.flush()])
            self._final = True
        before = self._stream.frames_emitted - len(new)
        patches = []
        position = 0
        while position < len(new):
            total = before + position  # frames held in _recent so far
            next_end = self._next_patch_end(frames=total)
            take = min(len(new) - position, next_end - total)
            self._append(frames=new[position : position + take])
            position += take
            if total + take == next_end:
                patches.append(self._recent.copy())
        if patches:
            self._submit(batch=np.stack(patches), warm_up=False)
            self._real_submitted += len(patches)

    def _next_patch_end(self, *, frames: int) -> int:
        """The frame count at which the next real patch completes, given ``frames`` already held."""
        if frames < mel.PATCH_FRAMES:
            return mel.PATCH_FRAMES
        return frames + self._hop - (frames - mel.PATCH_FRAMES) % self._hop

    def _append(self, *, frames: np.ndarray) -> None:
        count = len(frames)
        if count == 0:
            return
        if count >= len(self._recent):
            self._recent[:] = frames[-len(self._recent) :]
            return
        self._recent[:-count] = self._recent[count:]
        self._recent[-count:] = frames

    def _submit(self, *, batch: np.ndarray, warm_up: bool) -> None:
        # live, on a machine too slow for the model: drop queued patches, keep the newest audio (with
        # wait=True the backlog is bounded by the lag rule, at most PATCH_LAG_S * rate + 1 calls)
        while not self._wait and len(self._jobs) >= MAX_BACKLOG:
            oldest = next((job for job in self._jobs if job[0].cancel()), None)
            if oldest is None:
                break
            self._jobs.remove(oldest)
            self.dropped += 1
        self._jobs.append((self._executor.submit(self._model.process, windows=batch), warm_up, self.frames_emitted))
        self.patches_run += len(batch)

    def _collect(self, *, upto_frames: int, wait: bool) -> None:
        """Pool the outputs of the jobs handed over by ``upto_frames`` frames, in order, waiting for them
        (``wait``) or stopping at the first that is still running (warm-up results are kept apart)."""
        while self._jobs and self._jobs[0][2] <= upto_frames:
            if not wait and not self._jobs[0][0].done():
                self.late += 1
                break
            future, warm_up, _ = self._jobs.popleft()
            prediction = future.result()
            if warm_up:
                self._warm_up = prediction
                continue
            for mid, emotion in zip(prediction.mid, prediction.emotion):
                if np.all(np.isfinite(mid)) and np.all(np.isfinite(emotion)):
                    self._pool.process(row=np.concatenate([mid, emotion]))
                else:
                    self.non_finite += 1

    def predict(self) -> Prediction:
        """The pooled patch outputs up to the previous update, ``mid (1, 7)``, ``emotion (1, 8)``; while
        warming up, the model on the frames so far, loop-padded to a patch (one per patch hop)."""
        frames = self._stream.frames_emitted
        if self._real_submitted == 0 and (self._warm_up_frames is None or frames - self._warm_up_frames >= self._hop):
            held = self._recent[mel.PATCH_FRAMES - min(frames, mel.PATCH_FRAMES) :]
            self._submit(batch=mel.loop_pad(frames=held)[None], warm_up=True)
            self._warm_up_frames = frames
        everything = self._final or (self._warm_up is None and self._pool.count == 0)
        self._collect(upto_frames=frames if everything else frames - PATCH_LAG_FRAMES, wait=self._wait or everything)
        if self._pool.count > 0:
            pooled = self._pool.pooled()
            return Prediction(mid=pooled[None, : labels.NUM_MID_LEVELS], emotion=pooled[None, labels.NUM_MID_LEVELS :])
        if self._warm_up is None:  # every patch so far was non-finite: the worker keeps its last values
            return Prediction(mid=np.full((1, labels.NUM_MID_LEVELS), np.nan), emotion=np.full((1, labels.NUM_EMOTIONS), np.nan))
        return self._warm_up

    def _drain(self) -> None:
        while self._jobs:  # let a running patch finish; its result is dropped
            future = self._jobs.popleft()[0]
            if not future.cancel():
                future.exception()

    def reset(self) -> None:
        self._drain()
        self._stream.reset()
        self._recent[:] = 0.0
        self._pool.reset()
        self._warm_up = None
        self._warm_up_frames = None
        self._real_submitted = 0
        self._final = False

    def close(self) -> None:
        self._drain()
        self._executor.shutdown(wait=True)
        self._stream.close()
        self._pool.close()


def for_model(*, model: EmotionModel, wait: bool = True) -> WindowInference | PatchInference:
    """The live stage that matches the model's front-end (``wait``: see :class:`PatchInference`)."""
    if getattr(model, "pooling", None) is not None:  # only v2 models carry pooling (checked at load)
        return PatchInference(model=model, wait=wait)
    return WindowInference(model=model)
