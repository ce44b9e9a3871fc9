"""The smoother: exponential smoothing with a time constant in seconds that shortens while the values move
(One-Euro with a dead band), and the silence gate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mer_live.live.smoother import Smoother


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


# -- the change-adaptive part (follow > 0) -------------------------------------------------------

ADAPTIVE = {"time_constant_s": 16.0, "follow": 1280.0, "still_speed": 0.08, "speed_time_constant_s": 2.0}  # the One-Euro defaults before change points
SETTINGS = st.fixed_dictionaries({
    "time_constant_s": st.floats(min_value=0.0, max_value=60.0),
    "follow": st.floats(min_value=0.0, max_value=10_000.0),
    "still_speed": st.floats(min_value=0.0, max_value=10.0),
    "speed_time_constant_s": st.floats(min_value=0.05, max_value=10.0),
})
DTS = st.floats(min_value=0.0, max_value=2.0)


def updates(*, bound: float) -> st.SearchStrategy:
    """Up to 80 updates of 2 values within +-``bound``: ``(values, dt, gate_open)``."""
    pair = st.lists(st.floats(min_value=-bound, max_value=bound), min_size=2, max_size=2)
    return st.lists(st.tuples(pair, DTS, st.booleans()), min_size=1, max_size=80)


@settings(max_examples=100, deadline=None)
@given(options=SETTINGS, value=st.lists(st.floats(min_value=-1e3, max_value=1e3), min_size=3, max_size=3),
       dts=st.lists(DTS, min_size=1, max_size=60), gates=st.lists(st.booleans(), min_size=60, max_size=60))
def test_a_constant_input_stays_constant(options: dict, value: list[float], dts: list[float], gates: list[bool]) -> None:
    smoother = Smoother(size=3, **options)
    smoother.process(values=value, dt=0.1)
    for dt, gate in zip(dts, gates):
        np.testing.assert_array_equal(smoother.process(values=value, dt=dt, gate_open=gate), value)
    assert smoother.speed == 0.0


@settings(max_examples=100, deadline=None)
@given(options=SETTINGS, steps=updates(bound=10.0))
def test_the_output_stays_within_the_range_of_the_inputs_and_moves_every_channel_by_one_gain(options: dict, steps: list) -> None:
    smoother = Smoother(size=2, **options)
    seen = []
    for values, dt, gate in steps:
        before = smoother.smoothed
        had_value = smoother.has_value
        out = smoother.process(values=values, dt=dt, gate_open=gate)
        if gate:
            seen.append(values)
        if not seen:
            continue
        low, high = np.min(seen, axis=0), np.max(seen, axis=0)
        assert np.all(out >= low - 1e-9) and np.all(out <= high + 1e-9)
        if gate and had_value:  # out = before + g * (values - before), one g in [0, 1] for both channels
            gap = np.asarray(values) - before
            moved = out - before
            gains = [m / g for m, g in zip(moved, gap) if abs(g) > 1e-6]
            assert all(-1e-9 <= gain <= 1 + 1e-9 for gain in gains)
            if len(gains) == 2:
                assert gains[0] == pytest.approx(gains[1], rel=1e-6, abs=1e-9)


def test_follow_zero_is_the_plain_moving_average_whatever_the_still_speed() -> None:
    rng = np.random.default_rng(1)
    values = rng.standard_normal((200, 4))
    plain = Smoother(size=4, time_constant_s=2.0)
    adaptive_off = Smoother(size=4, time_constant_s=2.0, follow=0.0, still_speed=0.5)
    for row in values:
        np.testing.assert_array_equal(plain.process(values=row, dt=0.1), adaptive_off.process(values=row, dt=0.1))


STEP_AT_S = 30.0


def _step_input(*, rate: float, noise: float = 0.0, seed: int = 0, ramp_s: float = 2.0, at: float = STEP_AT_S) -> tuple[np.ndarray, np.ndarray]:
    """``(times, values (n, 2))``: 0 for ``at`` s, a ramp to 1 over ``ramp_s`` (a model's outputs cross a
    change in the music about so), then 1 for 30 s; plus white noise of std ``noise``."""
    times = np.arange(1, int((at + 32.0) * rate) + 1) / rate
    level = np.clip((times - at) / ramp_s, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    return times, level[:, None] + noise * rng.standard_normal((len(times), 2))


def _run(smoother: Smoother, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    before = 0.0
    for index, (at, row) in enumerate(zip(times, values)):
        out[index] = smoother.process(values=row, dt=at - before)
        before = at
    return out


def _t50(times: np.ndarray, out: np.ndarray, *, at: float = STEP_AT_S) -> float:
    return float(times[np.flatnonzero(out[:, 0] >= 0.5)[0]] - at)


def test_the_step_response_does_not_depend_on_the_update_rate() -> None:
    """Same input at 4, 10 and 30 updates/s: the outputs agree at common times (a time constant in
    seconds, and a speed from a low-passed difference quotient)."""
    traces = {}
    for rate in (4.0, 10.0, 30.0):
        times, values = _step_input(rate=rate)
        traces[rate] = dict(zip(np.round(times, 6), _run(Smoother(size=2, **ADAPTIVE), times, values)[:, 0]))
    for at in (30.5, 31.0, 31.5, 32.0, 33.0, 35.0, 40.0):
        outs = [traces[rate][at] for rate in traces]
        assert max(outs) - min(outs) < 0.06, (at, outs)
    assert all(traces[rate][61.0] > 0.99 for rate in traces)


LONG_AT_S = 600.0  # a long steady passage first: its std is the smoother's steady state


def _steady_std(smoother: Smoother, *, noise: float, rate: float = 10.0) -> float:
    times, values = _step_input(rate=rate, noise=noise, seed=7, at=LONG_AT_S)
    out = _run(smoother, times, values)
    return float(np.std(out[(times > LONG_AT_S / 2) & (times <= LONG_AT_S), 0]))


def test_at_equal_steady_noise_the_step_is_followed_sooner_than_by_the_moving_average() -> None:
    noise = 0.03  # raw jitter: a steady passage, against a change of the music of 1
    adaptive_std = _steady_std(Smoother(size=2, **ADAPTIVE), noise=noise)
    low, high = 0.01, 60.0  # the moving average's time constant with the same steady std, by bisection
    for _ in range(40):
        middle = math.sqrt(low * high)
        if _steady_std(Smoother(size=2, time_constant_s=middle), noise=noise) > adaptive_std:
            low = middle
        else:
            high = middle
    times, values = _step_input(rate=10.0, noise=noise, seed=7, at=LONG_AT_S)
    ema_t50 = _t50(times, _run(Smoother(size=2, time_constant_s=high), times, values), at=LONG_AT_S)
    adaptive_t50 = _t50(times, _run(Smoother(size=2, **ADAPTIVE), times, values), at=LONG_AT_S)
    assert high < 50.0  # the bisection found it
    assert adaptive_std < noise / 3  # it does smooth
    assert adaptive_t50 < 0.5 * ema_t50, (adaptive_t50, ema_t50, high)


def test_a_closed_gate_holds_the_output_and_the_speed() -> None:
    smoother = Smoother(size=2, **ADAPTIVE)
    times, values = _step_input(rate=10.0)
    for at, row in zip(times[:310], values[:310]):  # into the ramp: moving
        smoother.process(values=row, dt=0.1)
    held, speed = smoother.smoothed, smoother.speed
    assert speed > ADAPTIVE["still_speed"]
    for row in ([5.0, -5.0], [0.0, 0.0], [9.0, 9.0]):
        np.testing.assert_array_equal(smoother.process(values=row, dt=0.1, gate_open=False), held)
        assert smoother.speed == speed
        np.testing.assert_array_equal(smoother.raw, row)


def test_reset_forgets_the_speed_too() -> None:
    smoother = Smoother(size=1, **ADAPTIVE)
    for value in np.linspace(0.0, 3.0, 30):  # 1 unit per second for 3 s
        smoother.process(values=[value], dt=0.1)
    assert smoother.speed > 0.5
    smoother.reset()
    assert not smoother.has_value and smoother.speed == 0.0
    np.testing.assert_array_equal(smoother.process(values=[0.3], dt=0.1), [0.3])
    assert smoother.speed == 0.0
    smoother.close()
    assert not smoother.has_value


def test_speed_is_in_units_of_speed_scale() -> None:
    for scale in (1.0, 6.0):
        smoother = Smoother(size=2, time_constant_s=1.0, follow=1.0, speed_scale=scale, speed_time_constant_s=0.1)
        for index in range(200):  # a ramp of `scale` per second on both channels
            smoother.process(values=[index * 0.01 * scale] * 2, dt=0.01)
        assert smoother.speed == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("options", [{"follow": -1.0}, {"follow": math.nan}, {"still_speed": -0.1}, {"still_speed": math.inf},
                                     {"speed_scale": 0.0}, {"speed_time_constant_s": 0.0}])
def test_rejects_bad_adaptive_settings(options: dict) -> None:
    with pytest.raises(ValueError):
        Smoother(size=1, time_constant_s=1.0, **options)


# -- change points (change_threshold > 0) -----------------------------------------------------------

CHANGE_SETTINGS = st.fixed_dictionaries({
    "time_constant_s": st.floats(min_value=0.0, max_value=60.0),
    "change_threshold": st.floats(min_value=0.0, max_value=1.0),
    "fast_time_constant_s": st.floats(min_value=0.05, max_value=2.0),
    "change_ratio": st.floats(min_value=0.0, max_value=4.0),
    "follow": st.sampled_from([0.0, 1280.0]),
})


@settings(max_examples=100, deadline=None)
@given(options=CHANGE_SETTINGS, steps=updates(bound=1.0))
def test_with_change_points_the_output_stays_within_the_range_of_the_inputs(options: dict, steps: list) -> None:
    smoother = Smoother(size=2, **options)
    seen = []
    for values, dt, gate in steps:
        out = smoother.process(values=values, dt=dt, gate_open=gate)
        if gate:
            seen.append(values)
        if seen:
            assert np.all(out >= np.min(seen, axis=0) - 1e-9) and np.all(out <= np.max(seen, axis=0) + 1e-9)


@settings(max_examples=50, deadline=None)
@given(options=CHANGE_SETTINGS, value=st.lists(st.floats(min_value=-1e3, max_value=1e3), min_size=3, max_size=3),
       dts=st.lists(DTS, min_size=1, max_size=60))
def test_with_change_points_a_constant_input_stays_constant(options: dict, value: list[float], dts: list[float]) -> None:
    smoother = Smoother(size=3, **options)
    smoother.process(values=value, dt=0.1)
    for dt in dts:
        np.testing.assert_array_equal(smoother.process(values=value, dt=dt), value)
    assert smoother.changes == 0


def test_between_change_points_the_output_is_the_mean_since_the_last_one() -> None:
    """The first value counts for the fast average's time constant, every later one for its dt."""
    fast, dt = 0.25, 0.1
    smoother = Smoother(size=2, time_constant_s=60.0, change_threshold=0.5, fast_time_constant_s=fast, change_ratio=0.0)
    rng = np.random.default_rng(4)
    values = 0.3 + 0.05 * rng.standard_normal((100, 2))  # moves far less than the threshold
    smoother.process(values=values[0], dt=dt)
    for count in range(1, len(values)):
        out = smoother.process(values=values[count], dt=dt)
        expected = (fast * values[0] + dt * values[1:count + 1].sum(axis=0)) / (fast + count * dt)
        np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert smoother.changes == 0


def test_a_step_is_a_change_point_and_the_output_follows_it_at_once() -> None:
    rng = np.random.default_rng(5)
    dt, basis = 0.1, np.array([[1.0, 0.0], [0.5, 0.5]])
    smoother = Smoother(size=2, time_constant_s=60.0, change_threshold=0.2, change_basis=basis, fast_time_constant_s=0.25)
    moving_average = Smoother(size=2, time_constant_s=2.0)
    for index in range(200):  # 10 s at 0.2, then 10 s at 0.7, with noise well under the threshold
        level = 0.2 if index < 100 else 0.7
        values = level + 0.02 * rng.standard_normal(2)
        out = smoother.process(values=values, dt=dt)
        plain = moving_average.process(values=values, dt=dt)
        if index == 99:
            assert smoother.changes == 0
            assert abs(out[0] - 0.2) < 0.01
        if index == 105:  # half a second after the step
            assert smoother.changes == 1
            assert out[0] > 0.6 and plain[0] < 0.4
    assert smoother.changes == 1
    assert abs(out[0] - 0.7) < 0.01
    smoother.reset()
    assert smoother.changes == 0 and not smoother.has_value


def test_turning_change_points_on_mid_stream_finds_no_change_in_a_steady_input() -> None:
    smoother = Smoother(size=1, time_constant_s=16.0)
    for _ in range(50):
        smoother.process(values=[0.4], dt=0.1)
    smoother.set_change_threshold(threshold=0.05)
    for _ in range(20):
        np.testing.assert_array_equal(smoother.process(values=[0.4], dt=0.1), [0.4])
    assert smoother.changes == 0 and smoother.change_threshold == 0.05


@pytest.mark.parametrize("options", [{"change_threshold": -0.1}, {"change_threshold": math.nan}, {"change_ratio": -1.0},
                                     {"fast_time_constant_s": 0.0}, {"change_basis": np.ones((3, 2))},
                                     {"change_basis": np.full((1, 1), math.inf)}])
def test_rejects_bad_change_settings(options: dict) -> None:
    with pytest.raises(ValueError):
        Smoother(size=1, time_constant_s=1.0, **options)
