"""The front-end: filterbank shape, framing, streaming == batch, gain normalisation, padding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mer_live.audio import AudioFileError, load_audio
from mer_live.features import spectrogram

SECONDS_OF_NOISE = 12
MAX_CHUNK = 6000
NOISE_LEVEL = 0.1


def _noise(*, seconds: float, seed: int, level: float = NOISE_LEVEL) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * spectrogram.SAMPLE_RATE)) * level).astype(np.float32)


def test_filterbank_has_149_area_normalised_log_spaced_bands() -> None:
    bank = spectrogram.filterbank()
    assert bank.shape == (spectrogram.NUM_BINS, spectrogram.NUM_BANDS) == (1024, 149)
    assert np.all(bank >= 0.0)
    np.testing.assert_allclose(bank.sum(axis=0), 1.0, rtol=1e-5)
    peaks = bank.argmax(axis=0)
    assert np.all(np.diff(peaks) > 0), "band centres must rise strictly"
    bin_hz = spectrogram.SAMPLE_RATE / spectrogram.FRAME_SIZE
    assert peaks[0] * bin_hz < 40.0  # the lowest band sits a few bins above 20 Hz
    # 16 kHz lies above the 11,025 Hz Nyquist limit: the top filters merge into the last bins
    assert 10000.0 < peaks[-1] * bin_hz < spectrogram.SAMPLE_RATE / 2
    # above the region where merged bins make single-bin filters, spacing is about 24 per octave
    high = peaks[peaks * bin_hz > 2000.0] * bin_hz
    octaves = np.log2(high[-1] / high[0])
    assert (len(high) - 1) / octaves == pytest.approx(spectrogram.BANDS_PER_OCTAVE, rel=0.1)


def test_ten_seconds_make_313_frames() -> None:
    ten_seconds = int(spectrogram.WINDOW_SECONDS * spectrogram.SAMPLE_RATE)
    assert spectrogram.frame_count(num_samples=ten_seconds) == spectrogram.NUM_FRAMES == 313
    assert spectrogram.analyse(samples=np.zeros(ten_seconds, np.float32)).linear.shape == (313, 149)
    assert spectrogram.HOP_SIZE == pytest.approx(705.6)


@given(num_samples=st.integers(min_value=0, max_value=10**7))
def test_frame_count_is_ceil_of_samples_over_hop(num_samples: int) -> None:
    expected = int(np.ceil(num_samples / spectrogram.HOP_SIZE - 1e-12))
    assert spectrogram.frame_count(num_samples=num_samples) == expected


@given(num_frames=st.integers(min_value=1, max_value=10**5))
def test_frames_complete_exactly_when_their_last_sample_arrives(num_frames: int) -> None:
    needed = spectrogram.samples_needed(num_frames=num_frames)
    centre = int(np.floor((num_frames - 1) * spectrogram.HOP_SIZE + 1e-9))
    assert needed == centre + spectrogram.HALF_FRAME


@settings(max_examples=25, deadline=None)
@given(
    seconds=st.floats(min_value=0.01, max_value=4.0),
    chunks=st.lists(st.integers(min_value=1, max_value=MAX_CHUNK), min_size=1, max_size=40),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_streaming_equals_batch_bit_for_bit(seconds: float, chunks: list[int], seed: int) -> None:
    signal = _noise(seconds=seconds, seed=seed)
    stream = spectrogram.FrameStream()
    blocks, position, turn = [], 0, 0
    while position < len(signal):
        size = chunks[turn % len(chunks)]
        blocks.append(stream.process(samples=signal[position : position + size]))
        position += size
        turn += 1
    blocks.append(stream.flush())
    streamed = spectrogram.FrameBlock.concatenate(blocks=blocks)
    batch = spectrogram.analyse(samples=signal)
    assert streamed.num_frames == batch.num_frames == spectrogram.frame_count(num_samples=len(signal))
    np.testing.assert_array_equal(streamed.linear, batch.linear)
    np.testing.assert_array_equal(streamed.power, batch.power)


def test_stream_only_emits_complete_frames_before_flush() -> None:
    stream = spectrogram.FrameStream()
    block = stream.process(samples=np.zeros(spectrogram.HALF_FRAME - 1, np.float32))
    assert block.num_frames == 0
    block = stream.process(samples=np.zeros(1, np.float32))
    assert block.num_frames == 1  # frame 0 spans samples -1024 .. 1023
    stream.reset()
    assert stream.frames_emitted == 0 and stream.samples_seen == 0


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(min_value=0.05, max_value=8.0), seed=st.integers(min_value=0, max_value=2**16))
def test_window_is_invariant_to_input_gain_above_the_floor(scale: float, seed: int) -> None:
    signal = _noise(seconds=spectrogram.WINDOW_SECONDS, seed=seed)
    reference = spectrogram.normalise(block=spectrogram.analyse(samples=signal))
    scaled = spectrogram.normalise(block=spectrogram.analyse(samples=signal * np.float32(scale)))
    np.testing.assert_allclose(scaled, reference, rtol=1e-4, atol=1e-5)


def test_near_silence_is_not_amplified_into_noise() -> None:
    loud = _noise(seconds=spectrogram.WINDOW_SECONDS, seed=1)
    whisper_gain = spectrogram.RMS_FLOOR / NOISE_LEVEL / 1000.0  # 60 dB below the floor
    whisper = spectrogram.normalise(block=spectrogram.analyse(samples=loud * np.float32(whisper_gain)))
    normal = spectrogram.normalise(block=spectrogram.analyse(samples=loud))
    assert whisper.max() < normal.max() / 10.0
    silent = spectrogram.normalise(block=spectrogram.analyse(samples=np.zeros_like(loud)))
    assert np.all(silent == 0.0)


@pytest.mark.parametrize("frequency_hz", [110.0, 440.0, 1000.0, 5000.0])
def test_a_sine_peaks_in_the_band_around_its_frequency(frequency_hz: float) -> None:
    time = np.arange(spectrogram.SAMPLE_RATE * 2) / spectrogram.SAMPLE_RATE
    sine = (0.5 * np.sin(2 * np.pi * frequency_hz * time)).astype(np.float32)
    spectrum = spectrogram.analyse(samples=sine).linear[10:-10].mean(axis=0)
    peak_bin = spectrogram.filterbank()[:, int(spectrum.argmax())].argmax()
    peak_hz = peak_bin * spectrogram.SAMPLE_RATE / spectrogram.FRAME_SIZE
    assert abs(np.log2(peak_hz / frequency_hz)) < 1.0 / 12.0  # within a semitone


def test_loop_pad_repeats_real_frames_and_keeps_the_level() -> None:
    block = spectrogram.analyse(samples=_noise(seconds=3.0, seed=2))
    padded = spectrogram.loop_pad(block=block)
    assert padded.num_frames == spectrogram.NUM_FRAMES
    np.testing.assert_array_equal(padded.linear[: block.num_frames], block.linear)
    np.testing.assert_array_equal(padded.linear[block.num_frames : 2 * block.num_frames], block.linear)
    assert spectrogram.window_gain(power=padded.power) == pytest.approx(
        spectrogram.window_gain(power=block.power), rel=0.01
    )
    window, was_padded = spectrogram.window_at(block=block, start=0)
    assert was_padded and window.shape == (spectrogram.NUM_FRAMES, spectrogram.NUM_BANDS)


@given(total=st.integers(min_value=1, max_value=5000), hop=st.integers(min_value=1, max_value=400))
def test_window_starts_cover_the_signal(total: int, hop: int) -> None:
    starts = spectrogram.window_starts(total_frames=total, hop_frames=hop)
    assert starts[0] == 0
    assert all(b > a for a, b in zip(starts, starts[1:]))
    assert starts[-1] == max(0, total - spectrogram.NUM_FRAMES)
    assert all(b - a <= hop for a, b in zip(starts, starts[1:]))


@settings(max_examples=15, deadline=None)
@given(chunks=st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=10))
def test_rolling_window_equals_the_batch_window_over_the_same_frames(chunks: list[int]) -> None:
    block = spectrogram.analyse(samples=_noise(seconds=14.0, seed=3))
    rolling = spectrogram.RollingWindow()
    position, turn = 0, 0
    while position < block.num_frames:
        size = chunks[turn % len(chunks)]
        rolling.process(block=block.slice(start=position, stop=position + size))
        position += size
        turn += 1
    assert rolling.is_full
    expected, padded = spectrogram.window_at(block=block, start=block.num_frames - spectrogram.NUM_FRAMES)
    assert not padded
    np.testing.assert_array_equal(rolling.window(), expected)
    rolling.reset()
    assert rolling.filled == 0


def test_rolling_window_loop_pads_while_warming() -> None:
    block = spectrogram.analyse(samples=_noise(seconds=2.0, seed=4))
    rolling = spectrogram.RollingWindow()
    rolling.process(block=block)
    assert rolling.filled == block.num_frames and not rolling.is_full
    expected, padded = spectrogram.window_at(block=block, start=0)
    assert padded
    np.testing.assert_array_equal(rolling.window(), expected)


def test_to_mono_mixes_or_picks_a_channel() -> None:
    stereo = np.stack([np.ones(4, np.float32), -np.ones(4, np.float32) * 3], axis=1)
    np.testing.assert_array_equal(spectrogram.to_mono(audio=stereo), -np.ones(4))
    np.testing.assert_array_equal(spectrogram.to_mono(audio=stereo, channel=1), -3 * np.ones(4))
    with pytest.raises(ValueError, match="channel 2"):
        spectrogram.to_mono(audio=stereo, channel=2)


def test_resampling_halves_the_sample_count_and_keeps_a_tone() -> None:
    source_rate = 2 * spectrogram.SAMPLE_RATE
    time = np.arange(source_rate) / source_rate
    tone = np.sin(2 * np.pi * 1000.0 * time).astype(np.float32)
    out = spectrogram.resample(samples=tone, source_rate=source_rate)
    assert len(out) == spectrogram.SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(out))
    assert spectrum.argmax() == pytest.approx(1000.0, abs=1.0)


def test_load_audio_reports_unreadable_files_in_one_line(tmp_path) -> None:
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioFileError, match="no such file"):
        load_audio(path=missing)
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"this is not audio" * 10)
    with pytest.raises(AudioFileError) as caught:
        load_audio(path=garbage)
    assert "garbage.mp3" in str(caught.value) and "\n" not in str(caught.value)


def test_load_audio_decodes_a_real_clip(shared_data) -> None:
    samples = load_audio(path=shared_data / "soundtracks" / "audio" / "001.mp3")
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert 10.0 <= len(samples) / spectrogram.SAMPLE_RATE <= 40.0
    assert 0.0 < np.abs(samples).max() <= 1.0


@settings(max_examples=50, deadline=None)
@given(frames=st.integers(1, 300), channels=st.integers(1, 6), scale=st.floats(1e-6, 1e3), seed=st.integers(0, 2**16))
def test_to_mono_is_the_float32_mean_of_the_channels(frames: int, channels: int, scale: float, seed: int) -> None:
    """The stereo fast path gives the same bits as numpy's mean (the block decoder and the worker use it)."""
    audio = (np.random.default_rng(seed).standard_normal((frames, channels)) * scale).astype(np.float32)
    np.testing.assert_array_equal(spectrogram.to_mono(audio=audio), audio.mean(axis=1, dtype=np.float32))


def test_complete_frames_is_the_largest_count_whose_samples_have_arrived() -> None:
    """The closed form the streaming framer uses, against its definition, sample by sample."""
    complete = 0
    for num_samples in range(0, 60_000):
        while spectrogram.samples_needed(num_frames=complete + 1) <= num_samples:
            complete += 1
        assert spectrogram.complete_frames(num_samples=num_samples) == complete, num_samples
