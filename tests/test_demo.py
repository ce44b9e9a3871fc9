"""The synthesised demo piece: deterministic, in range, and its two sections really contrast."""

from __future__ import annotations

import numpy as np
import pytest

from mer_live.live import demo
from mer_live.features.spectrogram import SAMPLE_RATE

ANALYSIS_HZ = (60.0, 2000.0)
DARK_FUNDAMENTALS_HZ = (28.0, 110.0)


@pytest.fixture(scope="module")
def piece() -> np.ndarray:
    return demo.synthesise()


def _section(piece: np.ndarray, name: str) -> np.ndarray:
    section = next(s for s in demo.SECTIONS if s.name == name)
    return piece[int(section.start_s * SAMPLE_RATE) : int(section.end_s * SAMPLE_RATE)]


def _spectrum(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    magnitude = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.fft.rfftfreq(len(samples), 1.0 / SAMPLE_RATE), magnitude**2


def _pitch_class_energy(samples: np.ndarray, band_hz: tuple[float, float] = ANALYSIS_HZ) -> np.ndarray:
    """Energy per pitch class (0 = C) of spectral bins within 30 cents of an equal-tempered note."""
    freqs, power = _spectrum(samples)
    keep = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    midi = 69 + 12 * np.log2(freqs[keep] / 440.0)
    near = np.abs(midi - np.round(midi)) < 0.3
    classes = np.round(midi[near]).astype(int) % 12
    return np.bincount(classes, weights=power[keep][near], minlength=12)


def test_deterministic_mono_float32_in_range(piece: np.ndarray) -> None:
    assert piece.dtype == np.float32 and piece.ndim == 1
    assert len(piece) == int(demo.DURATION_SECONDS * SAMPLE_RATE)
    assert np.all(np.isfinite(piece))
    assert np.max(np.abs(piece)) == pytest.approx(demo.PEAK_AMPLITUDE, rel=1e-6)
    np.testing.assert_array_equal(piece, demo.synthesise())


def test_each_section_is_longer_than_one_model_window_and_audible(piece: np.ndarray) -> None:
    for section in demo.SECTIONS:
        assert section.end_s - section.start_s >= 10.0
        samples = _section(piece, section.name)
        assert 20 * np.log10(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) > -30.0


def test_bright_section_is_c_major(piece: np.ndarray) -> None:
    energy = _pitch_class_energy(_section(piece, "bright"))
    in_key = sum(energy[pc] for pc in demo.C_MAJOR_PITCH_CLASSES)
    assert in_key / energy.sum() > 0.95
    assert energy[4] > 5 * energy[3]  # major third E, not minor third Eb


def test_dark_section_is_minor_dissonant_and_low(piece: np.ndarray) -> None:
    bright, dark = _section(piece, "bright"), _section(piece, "dark")
    energy = _pitch_class_energy(dark, band_hz=DARK_FUNDAMENTALS_HZ)  # below the upper harmonics
    assert energy[3] > 5 * energy[4]  # minor third Eb over C, no E
    assert energy[1] > 0.02 * energy.sum()  # the minor second Db against C
    assert energy[6] > 0.01 * energy.sum()  # the tritone F#

    def centroid(samples: np.ndarray) -> float:
        freqs, power = _spectrum(samples)
        return float(np.sum(freqs * power) / np.sum(power))

    assert centroid(dark) < 0.6 * centroid(bright)


def test_bright_section_pulses_at_its_tempo(piece: np.ndarray) -> None:
    samples = _section(piece, "bright").astype(np.float64)
    hop = 256
    frames = len(samples) // hop
    energy = np.sqrt(np.mean(samples[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    onset = np.maximum(np.diff(energy), 0.0)
    onset -= onset.mean()
    autocorr = np.correlate(onset, onset, mode="full")[len(onset) - 1 :]
    lags_s = np.arange(len(autocorr)) * hop / SAMPLE_RATE
    window = (lags_s > 0.3) & (lags_s < 1.0)
    beat_s = lags_s[window][np.argmax(autocorr[window])]
    assert beat_s == pytest.approx(60.0 / demo.BRIGHT_BPM, abs=0.03)


def test_section_at() -> None:
    assert demo.section_at(seconds=0.0).name == "bright"
    assert demo.section_at(seconds=demo.SECTION_SECONDS + 1).name == "dark"
    assert demo.section_at(seconds=1e9).name == "dark"
