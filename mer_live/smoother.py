"""Change-adaptive smoothing of the model outputs, with a silence gate.

A one-pole low-pass on a vector of values whose speed sets its time constant: the One-Euro filter
(Casiez, Roussel and Vogel, CHI 2012) with one gain shared by the whole vector and a dead band on the
speed. At every update, ``dt`` seconds after the previous one:

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

The first value seen initialises the state. While the gate is closed (silence) the output holds its
last value and the state does not move, so the readings do not chase noise. The raw values of the last
update are kept beside the smoothed ones.
"""

from __future__ import annotations

import math

import numpy as np

SPEED_TIME_CONSTANT_S = 2.0  # the speed is low-passed over this long (chosen by benchmarks/responsiveness.py --tune)


class Smoother:
    """Smooths a vector of ``size`` values ``(size,)`` float64.

    ``time_constant_s``: seconds, while the values hold still (0: off). ``follow``: how much the rate
    ``1 / time constant`` rises per unit of speed above ``still_speed`` (units: ``speed_scale`` per
    second; ``follow`` 0: a plain moving average). ``speed_scale``: the size of one unit of the values
    (e.g. the span of their 0-1 units). ``speed_time_constant_s``: the low-pass of the speed.
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
    ) -> None:
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        for name, value in (("speed_scale", speed_scale), ("speed_time_constant_s", speed_time_constant_s)):
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        self._size = size
        self._speed_scale = float(speed_scale)
        self._speed_time_constant_s = float(speed_time_constant_s)
        self._time_constant_s = 0.0
        self._follow = 0.0
        self._still_speed = 0.0
        self.set_time_constant(seconds=time_constant_s)
        self.set_follow(follow=follow)
        self.set_still_speed(speed=still_speed)
        self._smoothed = np.zeros(size, dtype=np.float64)
        self._raw = np.zeros(size, dtype=np.float64)
        self._last_open = np.zeros(size, dtype=np.float64)  # the raw values of the last open-gate update
        self._velocity = np.zeros(size, dtype=np.float64)
        self._speed = 0.0
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
            self._has_value = True
            return self._smoothed.copy()
        if dt > 0.0:  # velocity += gain * ((values - last) / dt - velocity), with gain / dt <= 1 / its time constant
            gain = -math.expm1(-dt / self._speed_time_constant_s)
            self._velocity += (gain / dt) * (values - self._last_open) - gain * self._velocity
            self._speed = float(np.sqrt(np.mean(self._velocity**2))) / self._speed_scale
        self._last_open[:] = values
        self._smoothed += self.coefficient(dt=dt, speed=self._speed) * (values - self._smoothed)
        return self._smoothed.copy()

    def reset(self) -> None:
        """Forget the state: the next value is taken as is."""
        self._smoothed[:] = 0.0
        self._raw[:] = 0.0
        self._last_open[:] = 0.0
        self._velocity[:] = 0.0
        self._speed = 0.0
        self._has_value = False

    def close(self) -> None:
        """Nothing to release; forgets the state."""
        self.reset()


def _non_negative(what: str, value: float) -> float:
    """``value`` as a float if it is finite and >= 0, else ValueError naming ``what``."""
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value}")
    return float(value)
