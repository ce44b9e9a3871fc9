"""benchmarks/responsiveness.py's measures on traces whose answer is known (the daemon runs are the benchmark's)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "responsiveness.py"
_SPEC = importlib.util.spec_from_file_location("responsiveness", _PATH)
responsiveness = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(responsiveness)

RATE = 10.0


def _one_pole_steps(*, levels: list[float], tau: float, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    times = np.arange(1, int(len(levels) * responsiveness.SECTION_S * RATE) + 1) / RATE
    target = np.asarray(levels)[np.minimum((times // responsiveness.SECTION_S).astype(int), len(levels) - 1)]
    values = np.empty_like(times)
    state = levels[0]
    for index, goal in enumerate(target):
        state += (1 - math.exp(-1 / (RATE * tau))) * (goal - state)
        values[index] = state
    rng = np.random.default_rng(seed)
    return times, values + noise * rng.standard_normal(len(values))


def test_a_one_pole_step_covers_half_in_tau_ln2_and_ninety_percent_in_tau_ln10() -> None:
    tau = 2.0
    times, values = _one_pole_steps(levels=[0.2, 0.8, 0.2, 0.8], tau=tau)
    result = responsiveness.step_metrics(times=times, values=values, sections=4)
    assert result["steps_measured"] == 3
    assert result["t50_mean_s"] == pytest.approx(tau * math.log(2), abs=1 / RATE)
    assert result["t90_mean_s"] == pytest.approx(tau * math.log(10), abs=1 / RATE)
    assert result["mean_abs_step"] == pytest.approx(0.6, abs=1e-3)
    assert result["jitter"] < 0.005  # what is left of the step after 12 s = 6 time constants


def test_jitter_and_noise_measure_the_steady_spans_and_tiny_steps_are_left_out() -> None:
    times, values = _one_pole_steps(levels=[0.5, 0.5 + responsiveness.MIN_STEP / 2, 0.9], tau=0.5, noise=0.01)
    result = responsiveness.step_metrics(times=times, values=values, sections=3)
    assert result["steps_measured"] == 1 and "t50_s" not in result["steps"][0]
    assert result["jitter"] == pytest.approx(0.01, rel=0.2)
    assert result["noise"] == pytest.approx(0.01, rel=0.2)
