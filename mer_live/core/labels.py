"""Label names, their order, and the units the model and the sinks speak.

The model speaks the paper's units:

* emotions: the mean listener rating on the 1-9 scale divided by 10, so 0.1-0.9;
* mid-level features: the paper's 0.1-1.0 range.

Everything sent to the outside (OSC, CSV) is mapped affinely to 0-1:

* ``sent_emotion = (model_emotion - EMOTION_MODEL_MIN) / EMOTION_MODEL_SPAN``
  (rating 1 -> 0.0, rating 9 -> 1.0);
* ``sent_mid = (model_mid - MID_MODEL_MIN) / MID_MODEL_SPAN``.

Because both maps are affine and the Joint model's last layer is linear, an emotion
stays an exact sum of mid-level contributions in the sent units too (see
:mod:`mer_live.model.explanation`).
"""

from __future__ import annotations

import numpy as np

EMOTIONS: tuple[str, ...] = (
    "valence",
    "energy",
    "tension",
    "anger",
    "fear",
    "happy",
    "sad",
    "tender",
)
MID_LEVELS: tuple[str, ...] = (
    "melodiousness",
    "articulation",
    "rhythm_complexity",
    "rhythm_stability",
    "dissonance",
    "tonal_stability",
    "minorness",
)
NUM_EMOTIONS = len(EMOTIONS)
NUM_MID_LEVELS = len(MID_LEVELS)

RATING_MIN = 1.0
RATING_MAX = 9.0
RATING_TO_MODEL = 0.1  # the paper divides the 1-9 ratings by 10
EMOTION_MODEL_MIN = RATING_MIN * RATING_TO_MODEL
EMOTION_MODEL_SPAN = (RATING_MAX - RATING_MIN) * RATING_TO_MODEL
MID_MODEL_MIN = 0.1
MID_MODEL_MAX = 1.0
MID_MODEL_SPAN = MID_MODEL_MAX - MID_MODEL_MIN


def emotion_to_unit(*, model_values: np.ndarray) -> np.ndarray:
    """Map emotions from model units to the 0-1 range that is sent (not clipped).

    ``model_values``: ``(..., NUM_EMOTIONS)``; returns the same shape.
    """
    return (np.asarray(model_values, dtype=np.float64) - EMOTION_MODEL_MIN) / EMOTION_MODEL_SPAN


def mid_to_unit(*, model_values: np.ndarray) -> np.ndarray:
    """Map mid-level features from model units to the 0-1 range that is sent (not clipped).

    ``model_values``: ``(..., NUM_MID_LEVELS)``; returns the same shape.
    """
    return (np.asarray(model_values, dtype=np.float64) - MID_MODEL_MIN) / MID_MODEL_SPAN
