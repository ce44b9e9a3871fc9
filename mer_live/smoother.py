"""Exponential smoothing of the model outputs, with a silence gate.

A one-pole low-pass per value: after a step of ``dt`` seconds,

    smoothed += (1 - exp(-dt / time_constant)) * (raw - smoothed)

so the time constant is in seconds, independent of the update rate (after ``time_constant`` seconds
of a constant input the output has covered 63 % of a step). A time constant of 0 turns smoothing off.
The first value seen initialises the state. While the gate is closed (silence) the output holds its
last value and the state does not move, so the readings do not chase noise. The raw values of the
last update are kept beside the smoothed ones.
"""

from __future__ import annotations

import math

import numpy as np


class Smoother:
    """Smooths a vector of ``size`` values ``(size,)`` float64."""

    def __init__(self, *, size: int, time_constant_s: float) -> None:
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self._size = size
        self._time_constant_s = 0.0
        self.set_time_constant(seconds=time_constant_s)
        self._smoothed = np.zeros(size, dtype=np.float64)
        self._raw = np.zeros(size, dtype=np.float64)
        self._has_value = False

    @property
    def time_constant_s(self) -> float:
        return self._time_constant_s

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
        if not math.isfinite(seconds) or seconds < 0.0:
            raise ValueError(f"smoothing time constant must be a finite number >= 0, got {seconds}")
        self._time_constant_s = float(seconds)

    def coefficient(self, *, dt: float) -> float:
        """The fraction of the way to the new value covered in one step of ``dt`` seconds."""
        if self._time_constant_s <= 0.0:
            return 1.0
        return 1.0 - math.exp(-max(dt, 0.0) / self._time_constant_s)

    def process(self, *, values: np.ndarray, dt: float, gate_open: bool = True) -> np.ndarray:
        """Feed the raw ``values`` ``(size,)`` of one update, ``dt`` seconds after the previous one.

        Returns the smoothed values ``(size,)``. With ``gate_open=False`` the raw values are recorded
        but the smoothed output holds (before the first open-gate value there is nothing to hold, and
        :attr:`has_value` stays False).
        """
        values = np.asarray(values, dtype=np.float64).reshape(self._size)
        self._raw[:] = values
        if not gate_open:
            return self._smoothed.copy()
        if not self._has_value:
            self._smoothed[:] = values
            self._has_value = True
        else:
            self._smoothed += self.coefficient(dt=dt) * (values - self._smoothed)
        return self._smoothed.copy()

    def reset(self) -> None:
        """Forget the state: the next value is taken as is."""
        self._smoothed[:] = 0.0
        self._raw[:] = 0.0
        self._has_value = False
