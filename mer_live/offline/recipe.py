"""The model-specific part of offline analysis: audio -> front-end -> windows -> batched model -> values.

Everything else in ``mer-live analyze`` (decoding, scheduling, the process pool, Ray, output, resume) only
talks to this module through three things:

* :class:`Recipe`: what the model needs (``sample_rate`` of the decoded audio, window span and hop) and
  a factory of per-file front-ends (:meth:`Recipe.frontend`);
* a front-end: a stateful stream with ``process(samples) -> list[WindowBatch]``, ``flush()``, ``reset()``
  and ``close()``; it turns mono audio at ``sample_rate`` into batches of model inputs, computing shared
  work (spectrogram frames) once per file;
* :class:`WindowModel`: ``process(inputs) -> values`` ``(batch, NUM_VALUES)``, one ONNX Runtime call.

A new model (e.g. a different front-end) adds a recipe kind to :data:`RECIPES` and a branch in
:func:`recipe_for`; nothing else changes.

v1 (``spectrogram``): the A2Mid2E-Joint model on 10 s windows of the log-filtered spectrogram of
:mod:`mer_live.features.spectrogram`, hopped by 1 s; the last window ends at the last frame, and a file shorter than a
window is loop-padded. Frames are computed once per file in streaming form (:class:`features.FrameStream`)
and each window only normalises its 313 frames.

v2 (``musicnn-mel96``, a model whose metadata says so): the model on its own unit, 3 s patches of the
log-mel frames of :mod:`mer_live.features.mel` at 16 kHz, hopped by 62 frames (0.992 s), the last one
ending at the last frame, a file shorter than a patch loop-padded. Rows are per patch; the live daemon's
recency-weighted pooling is for following a stream, and a file's mean row is the plain mean.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_live.features import spectrogram, mel
from mer_live.core import labels
from mer_live.model.emotion_model import META_VARIANT, META_VERSION, EmotionModel

KIND_SPECTROGRAM = "spectrogram"
HOP_SECONDS = 1.0
HOP_FRAMES = int(round(HOP_SECONDS * spectrogram.FPS))  # 31 frames
KIND_MEL_PATCHES = mel.KIND
MEL_HOP_FRAMES = int(round(HOP_SECONDS * mel.FPS))  # 62 frames: 0.992 s
DEFAULT_BATCH_WINDOWS = 16  # per ORT call: 8-32 cost the same per window; memory grows with it
VALUE_NAMES = labels.EMOTIONS + labels.MID_LEVELS
NUM_VALUES = len(VALUE_NAMES)
HASH_CHARS = 12
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class WindowBatch:
    """Consecutive windows of one file: model ``inputs`` ``(batch, ...)`` float32, their start times
    ``starts_s`` ``(batch,)`` and whether each was loop-padded, ``padded`` ``(batch,)`` bool."""

    inputs: np.ndarray
    starts_s: np.ndarray
    padded: np.ndarray

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


class SpectrogramWindows:
    """v1 front-end: mono 22.05 kHz audio -> batches of normalised windows ``(batch, 313, 149)``.

    Feeding a file in any chunking, then :meth:`flush`, gives exactly the windows that
    ``features.window_at`` gives on ``features.analyse`` of the whole file, at
    ``features.window_starts(..., hop_frames)``, in order, in batches of ``batch_windows`` (the last one
    smaller). At most one window span of frames and one batch of windows are held.
    """

    def __init__(self, *, hop_frames: int = HOP_FRAMES, batch_windows: int = DEFAULT_BATCH_WINDOWS) -> None:
        self._hop = int(hop_frames)
        self._batch = max(1, int(batch_windows))
        self._frames = spectrogram.FrameStream()
        self.reset()

    def reset(self) -> None:
        self._frames.reset()
        self._held = spectrogram.FrameBlock.empty()
        self._held_origin = 0  # absolute index of the first held frame
        self._next_start = 0
        self._last_start = -1
        self._inputs = np.zeros((0, spectrogram.NUM_FRAMES, spectrogram.NUM_BANDS), dtype=spectrogram.FEATURE_DTYPE)
        self._starts: list[int] = []
        self._padded: list[bool] = []
        self._ready: list[WindowBatch] = []

    def process(self, samples: np.ndarray) -> list[WindowBatch]:
        """Add mono ``samples`` ``(num_samples,)``; return the batches that became full."""
        self._hold(block=self._frames.process(samples=samples))
        available = self._held_origin + self._held.num_frames
        while self._next_start + spectrogram.NUM_FRAMES <= available:
            self._take(start=self._next_start)
            self._next_start += self._hop
        self._drop(keep_from=min(self._next_start, max(0, available - spectrogram.NUM_FRAMES)))
        return self._batches(final=False)

    def flush(self) -> list[WindowBatch]:
        """End of the file: the remaining windows (the last one ends at the last frame)."""
        self._hold(block=self._frames.flush())
        total = self._held_origin + self._held.num_frames
        if total == 0:
            return []
        for start in spectrogram.window_starts(total_frames=total, hop_frames=self._hop):
            if start > self._last_start:
                self._take(start=start)
        return self._batches(final=True)

    def close(self) -> None:
        self._frames.close()
        self._held = spectrogram.FrameBlock.empty()
        self._starts, self._padded = [], []

    def _hold(self, *, block: spectrogram.FrameBlock) -> None:
        if block.num_frames:
            self._held = spectrogram.FrameBlock.concatenate(blocks=[self._held, block])

    def _drop(self, *, keep_from: int) -> None:
        if keep_from > self._held_origin:
            self._held = self._held.slice(start=keep_from - self._held_origin, stop=self._held.num_frames)
            self._held_origin = keep_from

    def _take(self, *, start: int) -> None:
        if not self._starts:  # a new batch: its windows are written in place
            self._inputs = np.empty((self._batch, spectrogram.NUM_FRAMES, spectrogram.NUM_BANDS),
                                    dtype=spectrogram.FEATURE_DTYPE)
        window, padded = spectrogram.window_at(block=self._held, start=start - self._held_origin)
        self._inputs[len(self._starts)] = window
        self._starts.append(start)
        self._padded.append(padded)
        self._last_start = start
        if len(self._starts) == self._batch:
            self._close_batch()

    def _close_batch(self) -> None:
        count = len(self._starts)
        self._ready.append(WindowBatch(
            inputs=self._inputs[:count],
            starts_s=np.asarray(self._starts, dtype=np.float64) / spectrogram.FPS,
            padded=np.asarray(self._padded, dtype=bool),
        ))
        self._starts, self._padded = [], []

    def _batches(self, *, final: bool) -> list[WindowBatch]:
        if final and self._starts:
            self._close_batch()
        ready, self._ready = self._ready, []
        return ready


class MelPatchWindows:
    """v2 front-end: mono 16 kHz audio -> batches of log-mel patches ``(batch, 187, 96)``.

    Feeding a file in any chunking, then :meth:`flush`, gives exactly the patches of
    ``mel_features.analyse`` of the whole file at ``features.window_starts(..., MEL_HOP_FRAMES, 187)``,
    loop-padded when the file is shorter than a patch, in batches of ``batch_windows``. At most one patch
    of frames and one batch are held.
    """

    def __init__(self, *, hop_frames: int = MEL_HOP_FRAMES, batch_windows: int = DEFAULT_BATCH_WINDOWS) -> None:
        self._hop = int(hop_frames)
        self._batch = max(1, int(batch_windows))
        self._stream = mel.MelStream()
        self.reset()

    def reset(self) -> None:
        self._stream.reset()
        self._held = np.zeros((0, mel.NUM_BANDS), dtype=mel.FEATURE_DTYPE)
        self._held_origin = 0  # absolute index of the first held frame
        self._next_start = 0
        self._last_start = -1
        self._inputs: list[np.ndarray] = []
        self._starts: list[int] = []
        self._padded: list[bool] = []
        self._ready: list[WindowBatch] = []

    def process(self, samples: np.ndarray) -> list[WindowBatch]:
        """Add mono ``samples`` ``(num_samples,)`` at 16 kHz; return the batches that became full."""
        self._hold(frames=self._stream.process(samples=samples))
        available = self._held_origin + len(self._held)
        while self._next_start + mel.PATCH_FRAMES <= available:
            self._take(start=self._next_start)
            self._next_start += self._hop
        keep_from = min(self._next_start, max(0, available - mel.PATCH_FRAMES))
        if keep_from > self._held_origin:
            self._held = self._held[keep_from - self._held_origin :]
            self._held_origin = keep_from
        return self._batches(final=False)

    def flush(self) -> list[WindowBatch]:
        """End of the file: the remaining patches (the last one ends at the last frame)."""
        self._hold(frames=self._stream.flush())
        total = self._held_origin + len(self._held)
        if total == 0:
            return []
        starts = spectrogram.window_starts(total_frames=total, hop_frames=self._hop, num_frames=mel.PATCH_FRAMES)
        for start in starts:
            if start > self._last_start:
                self._take(start=start)
        return self._batches(final=True)

    def close(self) -> None:
        self._stream.close()
        self._held = np.zeros((0, mel.NUM_BANDS), dtype=mel.FEATURE_DTYPE)
        self._inputs, self._starts, self._padded = [], [], []

    def _hold(self, *, frames: np.ndarray) -> None:
        if len(frames):
            self._held = np.concatenate([self._held, frames])

    def _take(self, *, start: int) -> None:
        patch = self._held[start - self._held_origin : start - self._held_origin + mel.PATCH_FRAMES]
        self._padded.append(len(patch) < mel.PATCH_FRAMES)
        self._inputs.append(mel.loop_pad(frames=patch))
        self._starts.append(start)
        self._last_start = start
        if len(self._starts) == self._batch:
            self._close_batch()

    def _close_batch(self) -> None:
        self._ready.append(WindowBatch(
            inputs=np.stack(self._inputs),
            starts_s=np.asarray(self._starts, dtype=np.float64) / mel.FPS,
            padded=np.asarray(self._padded, dtype=bool),
        ))
        self._inputs, self._starts, self._padded = [], [], []

    def _batches(self, *, final: bool) -> list[WindowBatch]:
        if final and self._starts:
            self._close_batch()
        ready, self._ready = self._ready, []
        return ready


@dataclass(frozen=True)
class Recipe:
    """What a model needs from the audio. Picklable, so that decode workers can build front-ends."""

    kind: str
    sample_rate: int
    window_span_s: float
    hop_s: float

    def frontend(self, *, batch_windows: int = DEFAULT_BATCH_WINDOWS) -> "SpectrogramWindows | MelPatchWindows":
        """A fresh per-file front-end."""
        if self.kind == KIND_SPECTROGRAM:
            return SpectrogramWindows(batch_windows=batch_windows)
        if self.kind == KIND_MEL_PATCHES:
            return MelPatchWindows(batch_windows=batch_windows)
        raise ValueError(f"unknown recipe kind {self.kind!r}")


RECIPES = {
    KIND_SPECTROGRAM: Recipe(
        kind=KIND_SPECTROGRAM,
        sample_rate=spectrogram.SAMPLE_RATE,
        window_span_s=spectrogram.NUM_FRAMES / spectrogram.FPS,
        hop_s=HOP_FRAMES / spectrogram.FPS,
    ),
    KIND_MEL_PATCHES: Recipe(
        kind=KIND_MEL_PATCHES,
        sample_rate=mel.SAMPLE_RATE,
        window_span_s=mel.PATCH_SECONDS,
        hop_s=MEL_HOP_FRAMES / mel.FPS,
    ),
}


def file_digest(*, path: Path) -> str:
    """The first ``HASH_CHARS`` hex digits of the SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:HASH_CHARS]


class WindowModel:
    """The ONNX model over batches of windows, giving values in sent units, clipped to [0, 1].

    ``name``: the model's variant (metadata); ``version``: the mer-live version it was exported with and
    the file's hash, and ``+int8`` when its INT8 pack ran (``precision``, see
    :class:`~mer_live.model.emotion_model.EmotionModel`), so that every output row says exactly which model
    made it.
    """

    def __init__(self, *, path: str | Path | None = None, threads: int = 1, precision: str | None = None,
                 reuse: bool | None = None) -> None:
        self._model = EmotionModel(path=path, threads=threads, precision=precision, reuse=reuse)
        self.path = self._model.path
        self.name = self._model.metadata.get(META_VARIANT, self.path.stem)
        version = self._model.metadata.get(META_VERSION, "unknown")
        packed = "" if self._model.precision == "float" else f"+{self._model.precision}"
        self.version = f"{version}+sha256.{file_digest(path=self.path)}{packed}"
        self.recipe = recipe_for(model=self._model)
        self.precision = self._model.precision

    def process(self, inputs: np.ndarray) -> np.ndarray:
        """``inputs`` ``(batch, ...)`` -> values ``(batch, NUM_VALUES)`` float64: emotions, then mid-levels."""
        prediction = self._model.process(windows=inputs)
        emotion = labels.emotion_to_unit(model_values=prediction.emotion)
        mid = labels.mid_to_unit(model_values=prediction.mid)
        return np.clip(np.concatenate([emotion, mid], axis=1), 0.0, 1.0)

    def close(self) -> None:
        self._model.close()


def recipe_for(*, model: EmotionModel) -> Recipe:
    """The recipe that feeds ``model`` (v1: the spectrogram recipe; v2, the models with pooling metadata:
    the mel-patch recipe; :class:`EmotionModel` has already checked the model's front-end metadata)."""
    return RECIPES[KIND_MEL_PATCHES if model.pooling is not None else KIND_SPECTROGRAM]
