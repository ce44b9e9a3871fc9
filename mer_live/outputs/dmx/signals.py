"""The values a DMX channel or a cue trigger can follow, as one flat vector per reading.

``emotion.<name>`` (8) and ``mid.<name>`` (7) in the 0-1 sent units, ``contribution.<emotion>.<mid>``
(56: how much each mid-level feature adds to each emotion, see :mod:`mer_live.explanation`),
``level`` (the input's RMS level in dBFS) and ``silence`` (1 while the input is silent or gone, else 0).
A frame clock interpolates this vector between analysis updates.
"""

from __future__ import annotations

import numpy as np

from mer_live.core import labels
from mer_live.core.reading import STATE_NO_INPUT, STATE_SILENT, Reading

LEVEL = "level"
SILENCE = "silence"
NAMES: tuple[str, ...] = (
    *(f"emotion.{name}" for name in labels.EMOTIONS),
    *(f"mid.{name}" for name in labels.MID_LEVELS),
    *(f"contribution.{emotion}.{mid}" for emotion in labels.EMOTIONS for mid in labels.MID_LEVELS),
    LEVEL,
    SILENCE,
)
INDEX = {name: index for index, name in enumerate(NAMES)}
EMOTION_AT = 0
MID_AT = labels.NUM_EMOTIONS
CONTRIBUTION_AT = MID_AT + labels.NUM_MID_LEVELS
LEVEL_AT = INDEX[LEVEL]
SILENCE_AT = INDEX[SILENCE]
LEVEL_RANGE_DBFS = (-60.0, 0.0)  # the default range of ``level``
CONTRIBUTION_RANGE = (-0.5, 0.5)  # the default range of a contribution (0-1 units of its emotion)
UNIT_RANGE = (0.0, 1.0)
SILENT_STATES = (STATE_SILENT, STATE_NO_INPUT)


def default_range(name: str) -> tuple[float, float]:
    """The input range a channel maps to its full output unless it gives ``range``."""
    if name == LEVEL:
        return LEVEL_RANGE_DBFS
    if name.startswith("contribution."):
        return CONTRIBUTION_RANGE
    return UNIT_RANGE


def is_silent(reading: Reading) -> bool:
    return reading.state in SILENT_STATES


def vector(reading: Reading, *, out: np.ndarray | None = None) -> np.ndarray | None:
    """The ``(len(NAMES),)`` vector of ``reading`` (written into ``out`` when given), or None before the
    model's first values."""
    if not reading.has_values:
        return None
    values = np.empty(len(NAMES)) if out is None else out
    values[EMOTION_AT:MID_AT] = reading.emotion
    values[MID_AT:CONTRIBUTION_AT] = reading.mid
    values[CONTRIBUTION_AT:LEVEL_AT] = np.asarray(reading.contributions).reshape(-1)
    values[LEVEL_AT] = reading.level_dbfs
    values[SILENCE_AT] = 1.0 if is_silent(reading) else 0.0
    return values


def top_contribution(reading: Reading, *, emotion: str) -> tuple[str, float]:
    """The mid-level feature that adds most to ``emotion`` in ``reading``, and how much."""
    row = np.asarray(reading.contributions)[labels.EMOTIONS.index(emotion)]
    best = int(np.argmax(row))
    return labels.MID_LEVELS[best], float(row[best])
