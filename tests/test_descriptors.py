"""Mid-level validity descriptors: each moves the expected way on signals built to differ in one respect."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mer_live.core import labels
from mer_live.train import descriptors

RATE = descriptors.DESCRIPTOR_RATE
SECONDS = 4.0


def _tone(*, frequencies: list[float], seconds: float = SECONDS, harmonics: int = 4) -> np.ndarray:
    time = np.arange(int(seconds * RATE)) / RATE
    return sum(np.sin(2 * np.pi * f * k * time) / k for f in frequencies for k in range(1, harmonics + 1)) * 0.1


def _notes(*, onsets: np.ndarray, pitch: float = 440.0, decay: float = 30.0, seconds: float = SECONDS) -> np.ndarray:
    time = np.arange(int(seconds * RATE)) / RATE
    signal = np.zeros_like(time)
    for onset in onsets:
        signal += np.where(time >= onset, np.exp(-(time - onset) * decay), 0.0) * np.sin(2 * np.pi * pitch * time)
    return 0.3 * signal


def _value(signal: np.ndarray, name: str) -> float:
    return float(descriptors.describe(signal.astype(np.float32))[labels.MID_LEVELS.index(name)])


def test_minor_triad_is_more_minor_than_major_and_triads_are_clearer_than_clusters() -> None:
    c_major = _tone(frequencies=[261.63, 329.63, 392.00])
    c_minor = _tone(frequencies=[261.63, 311.13, 392.00])
    assert _value(c_minor, "minorness") > _value(c_major, "minorness")
    cluster = _tone(frequencies=[261.63 * 2 ** (k / 12) for k in range(12)])
    assert _value(c_major, "tonal_stability") > _value(cluster, "tonal_stability")


def test_a_semitone_is_rougher_than_an_octave() -> None:
    assert _value(_tone(frequencies=[440.0, 466.16]), "dissonance") > _value(_tone(frequencies=[440.0, 880.0]), "dissonance")


def test_a_tone_is_more_harmonic_than_noise() -> None:
    noise = np.random.default_rng(0).standard_normal(int(SECONDS * RATE)) * 0.1
    assert _value(_tone(frequencies=[440.0]), "melodiousness") > _value(noise, "melodiousness")


def test_regular_onsets_are_more_stable_and_less_complex_than_irregular_ones() -> None:
    regular = _notes(onsets=np.arange(0.1, SECONDS, 0.5))
    irregular = _notes(onsets=np.cumsum(np.random.default_rng(1).uniform(0.1, 0.9, size=8)))
    assert _value(regular, "rhythm_stability") > _value(irregular, "rhythm_stability")
    assert _value(irregular, "rhythm_complexity") > _value(regular, "rhythm_complexity")


def test_staccato_attacks_are_sharper_than_swelling_ones() -> None:
    onsets = np.arange(0.1, SECONDS, 0.5)
    staccato = _notes(onsets=onsets, decay=30.0)
    time = np.arange(int(SECONDS * RATE)) / RATE
    phase = (time % 0.5) / 0.5
    legato = 0.3 * np.sin(np.pi * phase) * np.sin(2 * np.pi * 440.0 * time)  # soft swells, no attacks
    assert _value(staccato, "articulation") > _value(legato, "articulation")


def test_validity_table_counts_features_in_the_expected_direction() -> None:
    rng = np.random.default_rng(2)
    values = rng.standard_normal((100, 7))
    predicted = values.copy()
    predicted[:, 0] = -values[:, 0]  # wrong direction
    predicted[:, 1] = rng.standard_normal(100)  # unrelated
    table = descriptors.validity_table(predicted, values)
    assert table["passing"] == 5
    assert table["features"]["melodiousness"]["r"] == pytest.approx(-1.0)
    assert not table["features"]["melodiousness"]["passes"]
    assert table["features"]["minorness"]["passes"]
    with pytest.raises(ValueError):
        descriptors.validity_table(predicted[:, :6], values[:, :6])


def test_out_of_fold_predictions_are_read_from_cv_folds(tmp_path: Path) -> None:
    (tmp_path / "fold0.json").write_text(json.dumps({"test_ids": ["003", "001"], "clip_mid": [[3.0] * 7, [1.0] * 7]}))
    (tmp_path / "fold1.json").write_text(json.dumps({"test_ids": ["002"], "clip_mid": [[2.0] * 7]}))
    ids, mid = descriptors.oof_mid_from_cv(tmp_path)
    assert ids == ["001", "002", "003"]
    np.testing.assert_array_equal(mid[:, 0], [1.0, 2.0, 3.0])


def test_descriptor_sanity_compares_emotion_profiles_with_the_human_table(shared_data: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With descriptors equal to a linear mix of the ratings that follows the human table, agreement is high."""
    from mer_live.train import soundtracks

    data = soundtracks.load(root=shared_data)
    reference = soundtracks.mid_emotion_correlation(root=shared_data)
    standardised = (data.ratings - data.ratings.mean(axis=0)) / data.ratings.std(axis=0)
    fake = standardised @ reference.T  # (360, 7): each descriptor leans on the emotions as humans' ratings do
    monkeypatch.setattr(descriptors, "clip_descriptors", lambda **_: (data.ids, fake))
    sanity = descriptors.descriptor_sanity(root=shared_data)
    assert all(row["agreement_with_human_profile"] > 0.8 for row in sanity.values())


def _selected(signal: np.ndarray, name: str) -> float:
    return float(descriptors.describe_variants(signal.astype(np.float32))[descriptors.SELECTED_VARIANT[name]])


def test_selected_variants_move_the_expected_way() -> None:
    """The replacement descriptors: regular pulses are clearer in the tempogram and less varied in their
    intervals than irregular ones; noise is flatter than a harmonic tone (the dissonance proxy)."""
    seconds = 10.0
    regular = _notes(onsets=np.arange(0.1, seconds, 0.5), seconds=seconds)
    irregular = _notes(onsets=np.cumsum(np.random.default_rng(1).uniform(0.1, 0.9, size=20)), seconds=seconds)
    assert _selected(regular, "rhythm_stability") > _selected(irregular, "rhythm_stability")
    assert _selected(irregular, "rhythm_complexity") > _selected(regular, "rhythm_complexity")
    noise = np.random.default_rng(0).standard_normal(int(SECONDS * RATE)) * 0.1
    assert _selected(noise, "dissonance") > _selected(_tone(frequencies=[440.0]), "dissonance")
    assert descriptors.DESCRIPTOR_NAMES["dissonance"] == descriptors.VARIANT_NAMES["dissonance"]["spectral_flatness"]
    short = regular[: int(2.0 * RATE)]
    row = descriptors.describe_selected(short.astype(np.float32))  # the selected columns replace the first ones
    assert row[labels.MID_LEVELS.index("rhythm_stability")] == _selected(short, "rhythm_stability")


def test_variant_rule_needs_a_margin_and_some_correlation_with_the_emotions() -> None:
    def check(r: float, agreement: float) -> dict[str, float]:
        return {"max_abs_r_with_emotions": r, "agreement_with_human_profile": agreement}

    checks = {
        "rhythm_complexity": {"ioi_entropy": check(0.3, 0.10), "ioi_entropy_fine": check(0.3, 0.15)},  # below margin
        "rhythm_stability": {"acf_clarity": check(0.3, -0.2), "tempogram_clarity_local": check(0.05, 0.9),  # too weak
                             "fourier_tempogram_peak_ratio": check(0.3, 0.5)},
        "dissonance": {"roughness": check(0.2, -0.6), "spectral_flatness": check(0.4, 0.9)},
    }
    assert descriptors.choose_variants(checks) == {"rhythm_complexity": "ioi_entropy",
                                                   "rhythm_stability": "fourier_tempogram_peak_ratio",
                                                   "dissonance": "spectral_flatness"}
