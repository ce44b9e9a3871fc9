"""Change-adaptive smoothing of the model outputs, with a silence gate.

Two mechanisms share one gain for the whole vector. The default (``[analysis]`` ``change = 0.2``,
``follow = 0``, ``smoothing = 32``) is **change points**, described below: a running mean that starts
again when the music changes. The other, used when ``follow > 0`` (and the only one with ``change = 0``),
is a speed-adaptive one-pole low-pass, the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) with a
dead band on the speed; it was the default before the change points and stays for comparison
(``benchmarks/responsiveness.py`` runs both). At every update, ``dt`` seconds after the previous one:

    velocity += (1 - exp(-dt / speed_time_constant)) * ((raw - raw_before) / dt - velocity)
    speed     = rms(velocity) / speed_scale                          # units per second
    rate      = 1 / time_constant + follow * max(speed - still_speed, 0)   # 1 / seconds
    smoothed += (1 - exp(-dt * rate)) * (raw - smoothed)

While the values move slower than ``still_speed`` (a model's outputs wander inside a steady passage of
music) the output is an exponential moving average with ``time_constant`` seconds (after that long it
has covered 63 % of a step), so it is calm; when they move faster (the music changed), the rate rises
with the speed and the output lets go, so that it follows the change with little more delay than the
raw values. ``follow = 0`` is the plain moving average; ``time_constant = 0`` turns smoothing off. The
speed is low-passed (over ``SPEED_TIME_CONSTANT_S`` by default) so that one jump of the raw values
does not open the filter. Without the dead band (``still_speed = 0``) the plain One-Euro filter opens
on the wandering of a steady passage too: on the tuning files of ``benchmarks/responsiveness.py --tune``
no such setting comes near the jitter of v1, while the dead band goes below it.

Every channel gets the same gain, so the output is a convex combination of the raw vectors seen (it
stays within their range, channel by channel, and an affine map of the input, such as the Joint layer
from mid-level values to emotions or the 0-1 units, commutes with the smoothing). Times are in seconds,
so the behaviour does not depend on the update rate (exactly for the moving average; for the speed as
far as the low-pass of a finite difference is rate-independent: closely for inputs that change slowly
against ``dt``).

**Change points** (``change_threshold > 0``). The model's outputs also wander inside a steady passage,
and a filter that opens on their speed opens on that wandering too. With a change threshold the smoother
keeps a fast moving average of the raw values (``FAST_TIME_CONSTANT_S``) and measures, through
``change_basis`` (e.g. the Joint layer, so in emotion units), how far it has moved from the smoothed
output: the largest absolute component of ``change_basis @ (fast - smoothed)``. When that gap exceeds
``change_threshold``, and ``CHANGE_RATIO`` times the spread of the raw values around the smoothed output
since the last change point (an RMS of the same gap measure: a passage that wanders a lot needs a larger
move), the music has changed: the output jumps to the fast average and the averaging starts again from
there. Between change points the output is the mean of the raw values since the last one (weight ``dt``
each, the fast average counting for ``FAST_TIME_CONSTANT_S``), over at most ``time_constant_s``:

    gain      = max(dt / (age + dt), 1 - exp(-dt / time_constant))   # a mean, then a moving average
    age       = min(age + dt, time_constant)                          # seconds since the change point
    smoothed += max(gain, one_euro_coefficient) * (raw - smoothed)

so a steady passage grows ever calmer while a change is followed within the time it takes to show in the
fast average. The speed-adaptive part above still applies (the larger gain wins); with ``follow = 0``
only the change points and the running mean act. A jump moves every channel to the same moment's fast
average, so the output stays a convex combination of the raw vectors seen (below).

The first value seen initialises the state. While the gate is closed (silence) the output holds its
last value and the state does not move, so the readings do not chase noise. The raw values of the last
update are kept beside the smoothed ones.
"""

from __future__ import annotations

import math

import numpy as np

SPEED_TIME_CONSTANT_S = 2.0  # the speed is low-passed over this long (chosen by benchmarks/responsiveness.py --tune)
FAST_TIME_CONSTANT_S = 0.25  # the fast average that change points are detected on (benchmarks/responsiveness.py --tune)
CHANGE_RATIO = 2.0  # a change must also exceed this many times the spread since the last change point (--tune)


class Smoother:
    """Smooths a vector of ``size`` values ``(size,)`` float64.

    ``time_constant_s``: seconds, while the values hold still (0: off). ``follow``: how much the rate
    ``1 / time constant`` rises per unit of speed above ``still_speed`` (units: ``speed_scale`` per
    second; ``follow`` 0: a plain moving average). ``speed_scale``: the size of one unit of the values
    (e.g. the span of their 0-1 units). ``speed_time_constant_s``: the low-pass of the speed.
    ``change_threshold``: the gap that makes a change point (0: none), in the units of ``change_basis``
    ``(k, size)`` (default: the identity over ``speed_scale``); ``fast_time_constant_s`` and
    ``change_ratio``: the fast average and the spread factor of the module docstring.
    """

    def __init__(
        self,
        *,
        size: int,
        time_constant_s: float,
        follow: float = 0.0,
        still_speed: float = 0.0,
        speed_scale: float = 1.0,
        speed_time_constant_s: float = SPEED_TIME_CONSTANT_S,
        change_threshold: float = 0.0,
        change_basis: np.ndarray | None = None,
        fast_time_constant_s: float = FAST_TIME_CONSTANT_S,
        change_ratio: float = CHANGE_RATIO,
    ) -> None:
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        for name, value in (("speed_scale", speed_scale), ("speed_time_constant_s", speed_time_constant_s),
                            ("fast_time_constant_s", fast_time_constant_s)):
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        basis = np.eye(size) / speed_scale if change_basis is None else np.asarray(change_basis, dtype=np.float64)
        if basis.ndim != 2 or basis.shape[1] != size or not np.all(np.isfinite(basis)):
            raise ValueError(f"change_basis must be a finite (k, {size}) array, got shape {basis.shape}")
        self._basis = basis
        self._fast_time_constant_s = float(fast_time_constant_s)
        self._change_ratio = _non_negative("change ratio", change_ratio)
        self._change_threshold = 0.0
        self._size = size
        self._speed_scale = float(speed_scale)
        self._speed_time_constant_s = float(speed_time_constant_s)
        self._time_constant_s = 0.0
        self._follow = 0.0
        self._still_speed = 0.0
        self.set_time_constant(seconds=time_constant_s)
        self.set_follow(follow=follow)
        self.set_still_speed(speed=still_speed)
        self.set_change_threshold(threshold=change_threshold)
        self._smoothed = np.zeros(size, dtype=np.float64)
        self._raw = np.zeros(size, dtype=np.float64)
        self._last_open = np.zeros(size, dtype=np.float64)  # the raw values of the last open-gate update
        self._velocity = np.zeros(size, dtype=np.float64)
        self._speed = 0.0
        self._fast = np.zeros(size, dtype=np.float64)  # the fast average of the raw values (change points)
        self._age = 0.0  # seconds of raw values in the current mean (since the last change point)
        self._spread = 0.0  # mean square gap of the raw values from the output since the last change point
        self._changes = 0
        self._has_value = False

    @property
    def time_constant_s(self) -> float:
        return self._time_constant_s

    @property
    def follow(self) -> float:
        return self._follow

    @property
    def still_speed(self) -> float:
        return self._still_speed

    @property
    def speed(self) -> float:
        """The low-passed speed of the values at the last update, in units per second."""
        return self._speed

    @property
    def change_threshold(self) -> float:
        return self._change_threshold

    @property
    def changes(self) -> int:
        """How many change points have been detected since the last reset."""
        return self._changes

    @property
    def has_value(self) -> bool:
        """Whether any value has been seen (before that, ``smoothed``/``raw`` are meaningless)."""
        return self._has_value

    @property
    def smoothed(self) -> np.ndarray:
        """The current smoothed values ``(size,)`` (a copy)."""
        return self._smoothed.copy()

    @property
    def raw(self) -> np.ndarray:
        """The raw values of the last update ``(size,)`` (a copy)."""
        return self._raw.copy()

    def set_time_constant(self, *, seconds: float) -> None:
        self._time_constant_s = _non_negative("smoothing time constant", seconds)

    def set_follow(self, *, follow: float) -> None:
        self._follow = _non_negative("follow", follow)

    def set_still_speed(self, *, speed: float) -> None:
        self._still_speed = _non_negative("still speed", speed)

    def set_change_threshold(self, *, threshold: float) -> None:
        self._change_threshold = _non_negative("change threshold", threshold)

    def coefficient(self, *, dt: float, speed: float = 0.0) -> float:
        """The fraction of the way to the new value covered in one step of ``dt`` seconds at ``speed``."""
        if self._time_constant_s <= 0.0:
            return 1.0
        if dt <= 0.0:  # no time has passed (and 0 * an infinite rate is no number)
            return 0.0
        rate = 1.0 / self._time_constant_s + self._follow * max(speed - self._still_speed, 0.0)
        return -math.expm1(-dt * rate)

    def process(self, *, values: np.ndarray, dt: float, gate_open: bool = True) -> np.ndarray:
        """Feed the raw ``values`` ``(size,)`` of one update, ``dt`` seconds after the previous one.

        Returns the smoothed values ``(size,)``. With ``gate_open=False`` the raw values are recorded
        but the smoothed output and the speed hold (before the first open-gate value there is nothing
        to hold, and :attr:`has_value` stays False).
        """
        values = np.asarray(values, dtype=np.float64).reshape(self._size)
        self._raw[:] = values
        if not gate_open:
            return self._smoothed.copy()
        if not self._has_value:
            self._smoothed[:] = values
            self._last_open[:] = values
            self._fast[:] = values
            self._age = self._fast_time_constant_s
            self._has_value = True
            return self._smoothed.copy()
        if dt > 0.0:  # velocity += gain * ((values - last) / dt - velocity), with gain / dt <= 1 / its time constant
            gain = -math.expm1(-dt / self._speed_time_constant_s)
            self._velocity += (gain / dt) * (values - self._last_open) - gain * self._velocity
            self._speed = float(np.sqrt(np.mean(self._velocity**2))) / self._speed_scale
        self._last_open[:] = values
        coefficient = self.coefficient(dt=dt, speed=self._speed)
        tracking = self._time_constant_s > 0.0 and dt > 0.0  # the running mean is kept even while change points are off
        if tracking:
            mean_gain = self._change_step(values=values, dt=dt)
            if self._change_threshold > 0.0:
                coefficient = max(coefficient, mean_gain)
        self._smoothed += coefficient * (values - self._smoothed)
        if tracking:
            self._spread += mean_gain * (self._gap(values - self._smoothed) ** 2 - self._spread)
        return self._smoothed.copy()

    def _gap(self, difference: np.ndarray) -> float:
        """The size of a difference of values ``(size,)``: its largest absolute component in ``change_basis``."""
        return float(np.max(np.abs(self._basis @ difference)))

    def _change_step(self, *, values: np.ndarray, dt: float) -> float:
        """Advance the fast average and the age by ``dt``; at a change point (only with a change threshold),
        restart the mean at the fast average. Returns the running mean's gain: ``dt / age``, or once the
        mean spans ``time_constant_s``, that of a moving average with that time constant (at most 1)."""
        self._fast += -math.expm1(-dt / self._fast_time_constant_s) * (values - self._fast)
        limit = max(self._change_threshold, self._change_ratio * math.sqrt(self._spread))
        if self._change_threshold > 0.0 and self._gap(self._fast - self._smoothed) > limit:
            self._smoothed[:] = self._fast
            self._age = self._fast_time_constant_s
            self._spread = 0.0
            self._changes += 1
        gain = max(dt / (self._age + dt), -math.expm1(-dt / self._time_constant_s))
        self._age = min(self._age + dt, self._time_constant_s)
        return gain

    def reset(self) -> None:
        """Forget the state: the next value is taken as is."""
        self._smoothed[:] = 0.0
        self._raw[:] = 0.0
        self._last_open[:] = 0.0
        self._velocity[:] = 0.0
        self._speed = 0.0
        self._fast[:] = 0.0
        self._age = 0.0
        self._spread = 0.0
        self._changes = 0
        self._has_value = False

    def close(self) -> None:
        """Nothing to release; forgets the state."""
        self.reset()


def _non_negative(what: str, value: float) -> float:
    """``value`` as a float if it is finite and >= 0, else ValueError naming ``what``."""
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value}")
    return float(value)
