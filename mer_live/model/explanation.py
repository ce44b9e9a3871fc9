"""Explaining emotions as sums of mid-level contributions.

The Joint model's last layer is linear: ``emotion = bias + weight @ mid`` (model units). With the affine
maps of :mod:`mer_live.core.labels`, in sent 0-1 units

    sent_emotion[e] = sent_bias[e] + sum_m contribution[e, m]
    contribution[e, m] = weight[e, m] * mid[m] / EMOTION_MODEL_SPAN
    sent_bias[e] = (bias[e] - EMOTION_MODEL_MIN) / EMOTION_MODEL_SPAN

where ``mid`` is in model units. This holds exactly, before any clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_live.core import labels


@dataclass(frozen=True)
class Explanation:
    """``contributions`` ``(NUM_EMOTIONS, NUM_MID_LEVELS)`` and ``bias`` ``(NUM_EMOTIONS,)``, sent units."""

    contributions: np.ndarray
    bias: np.ndarray

    @property
    def emotion(self) -> np.ndarray:
        """The emotions these add up to, ``(NUM_EMOTIONS,)`` in sent units."""
        return self.bias + self.contributions.sum(axis=1)


def explain(*, mid: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> Explanation:
    """Contributions of each mid-level feature ``mid`` ``(NUM_MID_LEVELS,)`` (model units) to each emotion.

    ``weight``: ``(NUM_EMOTIONS, NUM_MID_LEVELS)``; ``bias``: ``(NUM_EMOTIONS,)``, both model units.
    """
    mid = np.asarray(mid, dtype=np.float64).reshape(labels.NUM_MID_LEVELS)
    contributions = np.asarray(weight, dtype=np.float64) * mid[None, :] / labels.EMOTION_MODEL_SPAN
    sent_bias = (np.asarray(bias, dtype=np.float64) - labels.EMOTION_MODEL_MIN) / labels.EMOTION_MODEL_SPAN
    return Explanation(contributions=contributions, bias=sent_bias)
