"""Exponential smoothing with a time constant in seconds, and the silence gate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mer_live.smoother import Smoother


@settings(max_examples=50, deadline=None)
@given(rate=st.floats(min_value=0.5, max_value=30.0), tau=st.floats(min_value=0.1, max_value=20.0))
def test_step_response_covers_63_percent_after_one_time_constant_at_any_rate(rate: float, tau: float) -> None:
    smoother = Smoother(size=2, time_constant_s=tau)
    smoother.process(values=np.zeros(2), dt=1.0 / rate)
    steps = tau * rate
    whole = int(steps)
    for _ in range(whole):
        out = smoother.process(values=np.ones(2), dt=1.0 / rate)
    if steps > whole:
        out = smoother.process(values=np.ones(2), dt=(steps - whole) / rate)
    np.testing.assert_allclose(out, 1.0 - math.exp(-1.0), rtol=1e-9)


def test_first_value_is_taken_as_is_and_zero_time_constant_passes_through() -> None:
    smoother = Smoother(size=3, time_constant_s=5.0)
    assert not smoother.has_value
    np.testing.assert_array_equal(smoother.process(values=[1.0, 2.0, 3.0], dt=0.25), [1.0, 2.0, 3.0])
    off = Smoother(size=1, time_constant_s=0.0)
    off.process(values=[0.0], dt=0.25)
    np.testing.assert_array_equal(off.process(values=[7.0], dt=0.25), [7.0])


def test_closed_gate_holds_last_values_and_keeps_raw() -> None:
    smoother = Smoother(size=2, time_constant_s=1.0)
    smoother.process(values=[0.2, 0.4], dt=0.25)
    held = smoother.process(values=[0.3, 0.5], dt=0.25)
    for noise in ([0.9, 0.0], [0.0, 0.9]):
        out = smoother.process(values=noise, dt=0.25, gate_open=False)
        np.testing.assert_array_equal(out, held)
        np.testing.assert_array_equal(smoother.raw, noise)
    moved = smoother.process(values=[1.0, 1.0], dt=0.25)
    assert np.all(moved > held)


def test_gate_closed_from_the_start_gives_no_value_until_it_opens() -> None:
    smoother = Smoother(size=1, time_constant_s=1.0)
    smoother.process(values=[0.5], dt=0.25, gate_open=False)
    assert not smoother.has_value
    np.testing.assert_array_equal(smoother.process(values=[0.8], dt=0.25), [0.8])


def test_reset_and_changing_the_time_constant() -> None:
    smoother = Smoother(size=1, time_constant_s=10.0)
    smoother.process(values=[0.0], dt=0.25)
    slow = smoother.process(values=[1.0], dt=0.25)[0]
    smoother.set_time_constant(seconds=0.1)
    fast = smoother.process(values=[1.0], dt=0.25)[0]
    assert slow < 0.05 and fast > 0.9
    smoother.reset()
    assert not smoother.has_value
    np.testing.assert_array_equal(smoother.process(values=[0.3], dt=0.25), [0.3])


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_rejects_bad_time_constants(bad: float) -> None:
    with pytest.raises(ValueError):
        Smoother(size=1, time_constant_s=bad)
