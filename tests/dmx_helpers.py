"""Readings with chosen values, for the DMX tests."""

from __future__ import annotations

import time

import numpy as np

from mer_live.core import labels
from mer_live.core.reading import STATE_RUNNING, Reading


def reading(*, emotion: dict[str, float] | None = None, mid: dict[str, float] | None = None, level_dbfs: float = -20.0,
            state: str = STATE_RUNNING, is_update: bool = True, updates: int = 1) -> Reading:
    """A reading whose emotions and mid-level values are 0.5 except those given; contributions make
    each emotion's explanation exact (bias 0, the emotion spread evenly over the 7 features, except
    tension, which dissonance drives)."""
    values = np.full(labels.NUM_EMOTIONS, 0.5)
    for name, value in (emotion or {}).items():
        values[labels.EMOTIONS.index(name)] = value
    mids = np.full(labels.NUM_MID_LEVELS, 0.5)
    for name, value in (mid or {}).items():
        mids[labels.MID_LEVELS.index(name)] = value
    contributions = np.repeat(values[:, None] / labels.NUM_MID_LEVELS, labels.NUM_MID_LEVELS, axis=1)
    tension = labels.EMOTIONS.index("tension")
    contributions[tension] = 0.0
    contributions[tension, labels.MID_LEVELS.index("dissonance")] = values[tension]
    return Reading(stream_time_s=0.0, wall_time=time.time(), state=state, level_dbfs=level_dbfs, overflows=0, updates=updates,
                   is_update=is_update, emotion=values, emotion_unclipped=values, mid=mids, raw_emotion=values, raw_mid=mids,
                   contributions=contributions, bias=np.zeros(labels.NUM_EMOTIONS))
