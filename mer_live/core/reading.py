"""What the analysis produces once per update: a :class:`Reading`, its states and its level.

A leaf module (numpy only): the worker makes readings, every sink consumes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STATE_WARMING = "warming"
STATE_RUNNING = "running"
STATE_SILENT = "silent"
STATE_NO_INPUT = "no-input"
STATES = (STATE_WARMING, STATE_RUNNING, STATE_SILENT, STATE_NO_INPUT)
LEVEL_FLOOR_DBFS = -120.0


@dataclass
class Reading:
    """One update (or heartbeat) as the sinks see it.

    ``emotion`` ``(8,)`` / ``mid`` ``(7,)``: smoothed, clipped to [0, 1]; ``emotion_unclipped`` ``(8,)``;
    ``raw_emotion`` / ``raw_mid``: the unsmoothed values, clipped; ``contributions`` ``(8, 7)`` and
    ``bias`` ``(8,)``: the explanation of the (smoothed) emotions, so that
    ``bias + contributions.sum(axis=1) == emotion_unclipped``. All None until the model has produced a
    first reading. ``is_update`` is False for a status-only heartbeat.
    ``dropped``: updates the outputs could not deliver so far, summed over them (set by
    :class:`~mer_live.outputs.base.Output`).
    """

    stream_time_s: float
    wall_time: float
    state: str
    level_dbfs: float
    overflows: int
    updates: int
    is_update: bool = True
    muted: bool = False
    emotion: np.ndarray | None = None
    emotion_unclipped: np.ndarray | None = None
    mid: np.ndarray | None = None
    raw_emotion: np.ndarray | None = None
    raw_mid: np.ndarray | None = None
    contributions: np.ndarray | None = None
    bias: np.ndarray | None = None
    dropped: int = 0

    @property
    def has_values(self) -> bool:
        return self.emotion is not None


def level_dbfs(*, samples: np.ndarray) -> float:
    """RMS level of ``samples`` ``(num_samples,)`` in dBFS, floored at ``LEVEL_FLOOR_DBFS``."""
    if len(samples) == 0:
        return LEVEL_FLOOR_DBFS
    mean_square = float(np.mean(np.square(samples, dtype=np.float64)))
    if not math.isfinite(mean_square) or mean_square <= 0.0:
        return LEVEL_FLOOR_DBFS
    return max(LEVEL_FLOOR_DBFS, 10.0 * math.log10(mean_square))
