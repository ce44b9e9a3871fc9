"""Training windows, folds and pseudo mid-level targets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mer_live.features import spectrogram
from mer_live.core import labels
from mer_live.train import data
from mer_live.train.evaluation import mid_consistency
from mer_live.train.folds import make_folds
from mer_live.train.training import split_validation


def _block(*, seconds: float, seed: int = 0) -> spectrogram.FrameBlock:
    rng = np.random.default_rng(seed)
    samples = 0.1 * rng.standard_normal(int(seconds * spectrogram.SAMPLE_RATE))
    return spectrogram.analyse(samples=samples.astype(np.float32))


def test_random_crop_is_a_live_normalised_window() -> None:
    block = _block(seconds=15.0)
    rng = np.random.default_rng(3)
    crop = data.random_crop(block=block, rng=rng)
    assert crop.shape == (spectrogram.NUM_FRAMES, spectrogram.NUM_BANDS) and crop.dtype == np.float32
    # the same start drawn again gives the window the live front-end would compute
    start = int(np.random.default_rng(3).integers(0, block.num_frames - spectrogram.NUM_FRAMES + 1))
    expected = spectrogram.normalise(block=block.slice(start=start, stop=start + spectrogram.NUM_FRAMES))
    np.testing.assert_array_equal(crop, expected)


def test_short_clip_is_loop_padded_and_flagged() -> None:
    block = _block(seconds=4.0)
    windows, padded = data.clip_windows(block=block)
    assert padded and windows.shape == (1, spectrogram.NUM_FRAMES, spectrogram.NUM_BANDS)
    crop = data.random_crop(block=block, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(crop, windows[0])
    np.testing.assert_array_equal(windows[0][: block.num_frames], windows[0][block.num_frames : 2 * block.num_frames])


def test_clip_windows_follow_the_one_second_hop() -> None:
    block = _block(seconds=17.0)
    windows, padded = data.clip_windows(block=block)
    starts = spectrogram.window_starts(total_frames=block.num_frames, hop_frames=31)
    assert not padded and len(windows) == len(starts) and data.EVAL_HOP_FRAMES == 31
    np.testing.assert_array_equal(windows[-1], spectrogram.window_at(block=block, start=starts[-1])[0])


def test_band_statistics_match_numpy() -> None:
    blocks = [_block(seconds=10.0, seed=1), _block(seconds=20.0, seed=2)]
    mean, std = data.band_statistics(blocks=blocks)
    frames = np.concatenate(
        [data.clip_windows(block=b, hop_frames=spectrogram.NUM_FRAMES)[0].reshape(-1, spectrogram.NUM_BANDS) for b in blocks]
    )
    np.testing.assert_allclose(mean, frames.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, frames.std(axis=0), rtol=1e-4, atol=1e-6)


def _correlated_ratings(*, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 4))
    ratings = 0.5 + 0.1 * (latent @ rng.standard_normal((4, labels.NUM_EMOTIONS))) + 0.03 * rng.standard_normal(
        (n, labels.NUM_EMOTIONS))
    mids = latent @ rng.standard_normal((4, labels.NUM_MID_LEVELS)) + 0.5 * rng.standard_normal((n, labels.NUM_MID_LEVELS))
    return ratings, mids


def test_pseudo_targets_are_the_least_squares_estimate() -> None:
    """With C the true mid/emotion correlations, C R^-1 z is the OLS fit of each mid feature on the emotions."""
    ratings, mids = _correlated_ratings(n=300, seed=5)
    correlation = np.corrcoef(np.c_[mids, ratings], rowvar=False)[: labels.NUM_MID_LEVELS, labels.NUM_MID_LEVELS :]
    targets, info = data.pseudo_mid_targets(ratings=ratings, correlation=correlation)
    assert info["ridge"] == 0.0 and info["condition_number"] > 1.0
    design = np.c_[np.ones(len(ratings)), ratings]
    for m in range(labels.NUM_MID_LEVELS):
        coefficients, *_ = np.linalg.lstsq(design, mids[:, m], rcond=None)
        fitted = design @ coefficients
        rescaled = labels.MID_MODEL_MIN + labels.MID_MODEL_SPAN * (fitted - fitted.min()) / np.ptp(fitted)
        np.testing.assert_allclose(targets[:, m], rescaled, atol=1e-9)


def test_ill_conditioned_ratings_get_a_ridge() -> None:
    ratings, _ = _correlated_ratings(n=100, seed=2)
    ratings[:, 1] = ratings[:, 0] + 1e-9 * np.arange(100)  # two near-identical emotions
    correlation = np.full((labels.NUM_MID_LEVELS, labels.NUM_EMOTIONS), 0.3)
    targets, info = data.pseudo_mid_targets(ratings=ratings, correlation=correlation)
    assert info["ridge"] == data.AUTO_RIDGE and info["condition_number"] > data.CONDITION_LIMIT
    assert np.all(np.isfinite(targets))


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=10, max_value=80), st.integers(min_value=0, max_value=10_000),
       st.floats(min_value=0.0, max_value=1.0))
def test_pseudo_targets_span_the_mid_level_range(n: int, seed: int, ridge: float) -> None:
    ratings, _ = _correlated_ratings(n=n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    correlation = rng.uniform(-0.9, 0.9, (labels.NUM_MID_LEVELS, labels.NUM_EMOTIONS))
    targets, _ = data.pseudo_mid_targets(ratings=ratings, correlation=correlation, ridge=ridge)
    assert targets.shape == (n, labels.NUM_MID_LEVELS)
    np.testing.assert_allclose(targets.min(axis=0), labels.MID_MODEL_MIN, atol=1e-9)
    np.testing.assert_allclose(targets.max(axis=0), labels.MID_MODEL_MAX, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=10, max_value=400), st.integers(min_value=2, max_value=10), st.integers(0, 99))
def test_folds_partition_the_clips_and_balance_categories(n: int, k: int, seed: int) -> None:
    categories = [f"c{i % 5}" for i in range(n)]
    folds = make_folds(targets=categories, num_folds=k, seed=seed)
    joined = np.sort(np.concatenate(folds))
    np.testing.assert_array_equal(joined, np.arange(n))
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for category in set(categories):
        counts = [sum(categories[i] == category for i in f) for f in folds]
        assert max(counts) - min(counts) <= 1
    again = make_folds(targets=categories, num_folds=k, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again))


def test_validation_split_is_disjoint_and_seeded() -> None:
    indices = np.arange(100, 200)
    train, val = split_validation(indices=indices, fraction=0.15, seed=4)
    assert len(val) == 15 and len(train) == 85 and not set(train) & set(val)
    assert set(train) | set(val) == set(indices.tolist())
    again_train, again_val = split_validation(indices=indices, fraction=0.15, seed=4)
    np.testing.assert_array_equal(val, again_val)


def test_mid_consistency_scores_agreement_and_disagreement() -> None:
    ratings, mids = _correlated_ratings(n=500, seed=9)
    reference = np.corrcoef(np.c_[mids, ratings], rowvar=False)[: labels.NUM_MID_LEVELS, labels.NUM_MID_LEVELS :]
    same = mid_consistency(predicted_mid=mids, ratings=ratings, reference=reference)
    assert same["mean_abs_diff"] == pytest.approx(0.0, abs=1e-12) and same["sign_agreement"] == 1.0
    flipped = mid_consistency(predicted_mid=-mids, ratings=ratings, reference=reference)
    assert flipped["sign_agreement"] == 0.0 and flipped["mean_abs_diff"] >= 0.6  # each strong cell differs by 2|r| >= 0.6
