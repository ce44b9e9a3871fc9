"""The v2 (musicnn) front-end: librosa as the reference, streaming == batch bit for bit, framing, patches."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mer_live.features import mel

MAX_CHUNK = 3000
NOISE_LEVEL = 0.1
# float32 rounding of S (librosa works in float32, we in float64): relative on S, absolute on log10(1 + 1e4 S)
REFERENCE_RTOL = 1e-4
REFERENCE_LOG_ATOL = 1e-5


def _librosa_log_mel(*, samples: np.ndarray) -> np.ndarray:
    power = librosa.feature.melspectrogram(
        y=samples, sr=mel.SAMPLE_RATE, n_fft=mel.FFT_SIZE, hop_length=mel.HOP_SIZE, n_mels=mel.NUM_BANDS
    ).T
    return np.log10(1.0 + mel.LOG_SCALE * power.astype(np.float64)), power


def _music_like(*, seconds: float, seed: int) -> np.ndarray:
    """Decaying harmonic notes over noise: wide dynamic range across bands and frames."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * mel.SAMPLE_RATE)) / mel.SAMPLE_RATE
    signal = 0.01 * rng.standard_normal(len(time))
    for onset, pitch in zip(np.arange(0.0, seconds, 0.25), rng.uniform(100.0, 1000.0, size=int(seconds * 4) + 1)):
        envelope = np.where(time >= onset, np.exp(-(time - onset) * 6.0), 0.0)
        signal += envelope * sum(np.sin(2 * np.pi * pitch * k * time) / k for k in range(1, 6)) * 0.2
    return signal.astype(np.float32)


def test_filterbank_equals_librosa_slaney_mel() -> None:
    reference = librosa.filters.mel(sr=mel.SAMPLE_RATE, n_fft=mel.FFT_SIZE, n_mels=mel.NUM_BANDS).T
    assert mel.mel_filterbank().shape == (mel.NUM_BINS, mel.NUM_BANDS) == (257, 96)
    np.testing.assert_allclose(mel.mel_filterbank(), reference, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seconds", [0.01, 0.5, 4.0, 7.3])
def test_every_frame_equals_librosa(seconds: float) -> None:
    """librosa (>= 0.10) pads with zeros, as we do: the edge frames match too, not only the interior."""
    samples = _music_like(seconds=seconds, seed=int(seconds * 100))
    ours = mel.analyse(samples=samples)
    reference_log, reference_power = _librosa_log_mel(samples=samples)
    assert ours.shape == reference_log.shape == (mel.frame_count(num_samples=len(samples)), mel.NUM_BANDS)
    np.testing.assert_allclose(ours, reference_log, atol=REFERENCE_LOG_ATOL, rtol=0)
    recovered = (10.0 ** ours.astype(np.float64) - 1.0) / mel.LOG_SCALE
    loud = reference_power > 1e-3  # where float32 log values still resolve S to 1e-4
    np.testing.assert_allclose(recovered[loud], reference_power[loud], rtol=REFERENCE_RTOL * 10)


def test_interior_frames_equal_librosa_with_reflect_padding_only_the_first_differs() -> None:
    """The edge behaviour of librosa < 0.10 (musicnn's time): reflection padding changes frame 0 only
    (the pad is half a frame; frame 1 starts at sample 0)."""
    samples = _music_like(seconds=2.0, seed=7)
    ours = mel.analyse(samples=samples)
    power = librosa.feature.melspectrogram(
        y=samples, sr=mel.SAMPLE_RATE, n_fft=mel.FFT_SIZE, hop_length=mel.HOP_SIZE, n_mels=mel.NUM_BANDS,
        pad_mode="reflect",
    ).T
    reflected = np.log10(1.0 + mel.LOG_SCALE * power.astype(np.float64))
    np.testing.assert_allclose(ours[1:-2], reflected[1:-2], atol=REFERENCE_LOG_ATOL, rtol=0)
    assert np.max(np.abs(ours[0] - reflected[0])) > 10 * REFERENCE_LOG_ATOL


@settings(max_examples=30, deadline=None)
@given(
    seconds=st.floats(min_value=0.0, max_value=3.0),
    chunks=st.lists(st.integers(min_value=1, max_value=MAX_CHUNK), min_size=1, max_size=40),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_streaming_equals_batch_bit_for_bit(seconds: float, chunks: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    signal = (rng.standard_normal(int(seconds * mel.SAMPLE_RATE)) * NOISE_LEVEL).astype(np.float32)
    stream = mel.MelStream()
    blocks, position, turn = [], 0, 0
    while position < len(signal):
        size = chunks[turn % len(chunks)]
        new = stream.process(samples=signal[position : position + size])
        position += size
        turn += 1
        assert stream.frames_emitted == mel.complete_frames(num_samples=min(position, len(signal)))
        blocks.append(new)
    blocks.append(stream.flush())
    streamed = np.concatenate(blocks)
    batch = mel.analyse(samples=signal)
    assert streamed.shape == batch.shape == (mel.frame_count(num_samples=len(signal)), mel.NUM_BANDS)
    np.testing.assert_array_equal(streamed, batch)


@given(num_samples=st.integers(min_value=0, max_value=10**7))
def test_a_frame_completes_when_its_last_sample_arrives(num_samples: int) -> None:
    complete = mel.complete_frames(num_samples=num_samples)
    # frame i covers samples i*HOP - HALF .. i*HOP + HALF - 1
    if complete:
        assert (complete - 1) * mel.HOP_SIZE + mel.HALF_FRAME <= num_samples
    assert complete * mel.HOP_SIZE + mel.HALF_FRAME > num_samples
    assert complete <= mel.frame_count(num_samples=num_samples)


def test_reset_starts_again_from_sample_zero() -> None:
    signal = _music_like(seconds=1.0, seed=3)
    stream = mel.MelStream()
    stream.process(samples=signal[:5000])
    stream.reset()
    again = np.concatenate([stream.process(samples=signal), stream.flush()])
    np.testing.assert_array_equal(again, mel.analyse(samples=signal))


def test_three_seconds_make_one_patch_and_patches_follow_the_live_schedule() -> None:
    assert mel.PATCH_FRAMES == 187 and mel.PATCH_SECONDS == pytest.approx(2.992)
    assert mel.patch_starts(total_frames=100, hop_frames=31) == [0]
    assert mel.patch_starts(total_frames=187, hop_frames=31) == [0]
    assert mel.patch_starts(total_frames=187 + 62, hop_frames=31) == [0, 31, 62]
    assert mel.patch_starts(total_frames=187 + 61, hop_frames=31) == [0, 31]


def test_loop_pad_repeats_from_the_start() -> None:
    frames = np.arange(5 * mel.NUM_BANDS, dtype=np.float32).reshape(5, mel.NUM_BANDS)
    padded = mel.loop_pad(frames=frames)
    assert padded.shape == (mel.PATCH_FRAMES, mel.NUM_BANDS)
    np.testing.assert_array_equal(padded[5:10], frames)
    np.testing.assert_array_equal(padded[-1], frames[(mel.PATCH_FRAMES - 1) % 5])
