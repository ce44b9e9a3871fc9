"""Training windows, evaluation windows, band statistics and pseudo mid-level targets (numpy).

A training example is a random 10 s crop (``NUM_FRAMES`` consecutive frames) of a clip, normalised
with :func:`mer_live.features.spectrogram.normalise` exactly as the live daemon normalises its rolling window.
Clips shorter than 10 s are loop-padded (:func:`mer_live.features.spectrogram.loop_pad`), as live.
"""

from __future__ import annotations

import numpy as np

from mer_live.features import spectrogram
from mer_live.core import labels

EVAL_HOP_SECONDS = 1.0
EVAL_HOP_FRAMES = int(round(EVAL_HOP_SECONDS * spectrogram.FPS))  # 31 frames
DEFAULT_RIDGE = 0.0
CONDITION_LIMIT = 1e3  # above this condition number of R, a ridge of AUTO_RIDGE is added
AUTO_RIDGE = 0.05


def random_crop(*, block: spectrogram.FrameBlock, rng: np.random.Generator) -> np.ndarray:
    """A normalised window ``(NUM_FRAMES, NUM_BANDS)`` from a random start frame."""
    spare = block.num_frames - spectrogram.NUM_FRAMES
    start = int(rng.integers(0, spare + 1)) if spare > 0 else 0
    window, _ = spectrogram.window_at(block=block, start=start)
    return window


def clip_windows(*, block: spectrogram.FrameBlock, hop_frames: int = EVAL_HOP_FRAMES) -> tuple[np.ndarray, bool]:
    """All sliding windows of a clip, ``(num_windows, NUM_FRAMES, NUM_BANDS)``, and whether it was padded."""
    starts = spectrogram.window_starts(total_frames=block.num_frames, hop_frames=hop_frames)
    windows = []
    padded = False
    for start in starts:
        window, was_padded = spectrogram.window_at(block=block, start=start)
        windows.append(window)
        padded = padded or was_padded
    return np.stack(windows), padded


def band_statistics(*, blocks: list[spectrogram.FrameBlock]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std ``(NUM_BANDS,)`` over the frames of the clips' evaluation windows."""
    total = np.zeros(spectrogram.NUM_BANDS, dtype=np.float64)
    total_sq = np.zeros(spectrogram.NUM_BANDS, dtype=np.float64)
    count = 0
    for block in blocks:
        windows, _ = clip_windows(block=block, hop_frames=spectrogram.NUM_FRAMES)
        flat = windows.reshape(-1, spectrogram.NUM_BANDS).astype(np.float64)
        total += flat.sum(axis=0)
        total_sq += np.square(flat).sum(axis=0)
        count += flat.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


def pseudo_mid_targets(
    *, ratings: np.ndarray, correlation: np.ndarray, ridge: float = DEFAULT_RIDGE
) -> tuple[np.ndarray, dict[str, float]]:
    """Pseudo mid-level targets ``(num_clips, 7)`` in the 0.1-1.0 range, from emotion ratings ``(num_clips, 8)``.

    In standardised units the best linear estimate of mid-level feature ``m`` from the 8 emotions is
    ``z_mid = C R^-1 z_emotion``, with ``C`` ``(7, 8)`` the mid-level/emotion correlations (the poster's
    table) and ``R`` ``(8, 8)`` the emotion/emotion correlations of ``ratings``. ``R`` is regularised by
    ``ridge`` (on the diagonal; a small ridge is added automatically when ``R`` is ill-conditioned).
    Each feature is then mapped min-max onto ``[MID_MODEL_MIN, MID_MODEL_MAX]`` over these clips.
    Returns the targets and diagnostics (condition number, ridge used).
    """
    ratings = np.asarray(ratings, dtype=np.float64)
    mean = ratings.mean(axis=0)
    std = np.maximum(ratings.std(axis=0), np.finfo(np.float64).eps)
    z_emotion = (ratings - mean) / std
    emotion_correlation = np.corrcoef(ratings, rowvar=False)
    condition = float(np.linalg.cond(emotion_correlation))
    if condition > CONDITION_LIMIT and ridge < AUTO_RIDGE:
        ridge = AUTO_RIDGE
    regularised = emotion_correlation + ridge * np.eye(labels.NUM_EMOTIONS)
    mapping = np.asarray(correlation, dtype=np.float64) @ np.linalg.inv(regularised)  # (7, 8)
    z_mid = z_emotion @ mapping.T
    low = z_mid.min(axis=0)
    span = np.maximum(z_mid.max(axis=0) - low, np.finfo(np.float64).eps)
    targets = labels.MID_MODEL_MIN + labels.MID_MODEL_SPAN * (z_mid - low) / span
    return targets, {"condition_number": condition, "ridge": float(ridge)}
