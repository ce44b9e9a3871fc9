"""Emotions are exact sums of mid-level contributions, in the sent 0-1 units."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mer_live.model import explanation
from mer_live.core import labels

finite = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False)


@given(
    mid=arrays(np.float64, (labels.NUM_MID_LEVELS,), elements=finite),
    weight=arrays(np.float64, (labels.NUM_EMOTIONS, labels.NUM_MID_LEVELS), elements=finite),
    bias=arrays(np.float64, (labels.NUM_EMOTIONS,), elements=finite),
)
def test_bias_plus_contributions_equals_the_sent_emotion(mid, weight, bias) -> None:
    model_emotion = bias + weight @ mid
    result = explanation.explain(mid=mid, weight=weight, bias=bias)
    sent = labels.emotion_to_unit(model_values=model_emotion)
    np.testing.assert_allclose(result.emotion, sent, atol=1e-9)
    assert result.contributions.shape == (labels.NUM_EMOTIONS, labels.NUM_MID_LEVELS)


def test_unit_maps_send_rating_extremes_to_zero_and_one() -> None:
    ratings = np.array([labels.RATING_MIN, labels.RATING_MAX]) * labels.RATING_TO_MODEL
    np.testing.assert_allclose(labels.emotion_to_unit(model_values=ratings), [0.0, 1.0])
    mids = np.array([labels.MID_MODEL_MIN, labels.MID_MODEL_MAX])
    np.testing.assert_allclose(labels.mid_to_unit(model_values=mids), [0.0, 1.0])


def test_label_orders_match_the_paper() -> None:
    assert labels.EMOTIONS == ("valence", "energy", "tension", "anger", "fear", "happy", "sad", "tender")
    assert labels.MID_LEVELS[0] == "melodiousness" and labels.MID_LEVELS[-1] == "minorness"
    assert len(labels.MID_LEVELS) == 7
