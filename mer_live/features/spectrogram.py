"""The front-end: mono 22.05 kHz audio -> log-filtered spectrogram windows (numpy only).

One implementation serves training, offline analysis and the live daemon.

The recipe follows madmom's ``LogarithmicFilteredSpectrogram`` as used by Chowdhury et al. (2019):

* frames of ``FRAME_SIZE`` = 2048 samples, a Hann window, ``FPS`` = 31.25 frames per second, so a hop
  of 705.6 samples. Frame ``i`` is centred on sample ``floor(i * HOP_SIZE)``; samples before the start
  and after the end of the signal are zeros, so a signal of ``n`` samples has ``ceil(n / HOP_SIZE)``
  frames and 10 s make ``NUM_FRAMES`` = 313 frames;
* the magnitude spectrum of each frame goes through triangular filters spaced 24 per octave from
  20 Hz to 16 kHz, area-normalised, with filters that would fall on the same FFT bins merged (at low
  frequencies the bins are wider than the spacing, and at 22.05 kHz everything above the 11,025 Hz
  Nyquist limit falls on the last bin). That leaves ``NUM_BANDS`` = 149 bands;
* per analysis window, the amplitude is normalised: the filtered magnitudes ``M`` of the window's
  frames are scaled by ``g = 1 / max(rms, RMS_FLOOR)``, where ``rms`` is the root mean square of the
  window's samples, estimated as the mean over its frames of each frame's mean square. The floor keeps
  near-silence from being amplified into noise. Scaling the audio by ``g`` scales ``M`` by ``g``, so
  live use computes ``M`` once per frame and applies ``log10(1 + g * M)`` to the rolling window at each
  update, which is exact and cheap.

Arrays are time-major: a spectrogram is ``(num_frames, num_bands)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from mer_live.features.framing import StreamFramer

SAMPLE_RATE = 22050
FRAME_SIZE = 2048
FPS = 31.25
HOP_SIZE = SAMPLE_RATE / FPS  # 705.6 samples
_HOP_FRACTION = Fraction(SAMPLE_RATE) / Fraction(FPS)  # 3528/5: exact integer frame positions
NUM_BINS = FRAME_SIZE // 2
BANDS_PER_OCTAVE = 24
FMIN_HZ = 20.0
FMAX_HZ = 16000.0
TUNING_HZ = 440.0
NUM_BANDS = 149
WINDOW_SECONDS = 10.0
NUM_FRAMES = math.ceil(WINDOW_SECONDS * FPS)  # 313
RMS_FLOOR_DBFS = -50.0
RMS_FLOOR = 10.0 ** (RMS_FLOOR_DBFS / 20.0)
HALF_FRAME = FRAME_SIZE // 2
FEATURE_DTYPE = np.float32
STEREO = 2

# Every constant a model must agree with, as stored in the ONNX metadata.
FRONTEND_CONSTANTS: dict[str, float | int | str] = {
    "sample_rate": SAMPLE_RATE,
    "frame_size": FRAME_SIZE,
    "fps": FPS,
    "bands_per_octave": BANDS_PER_OCTAVE,
    "fmin_hz": FMIN_HZ,
    "fmax_hz": FMAX_HZ,
    "num_bands": NUM_BANDS,
    "num_frames": NUM_FRAMES,
    "window": "hann",
    "magnitude": "log10(1 + g * M), g = 1 / max(rms, rms_floor)",
    "rms_floor_dbfs": RMS_FLOOR_DBFS,
}


def frame_centre(*, index: int | np.ndarray) -> int | np.ndarray:
    """The sample on which frame ``index`` is centred: ``floor(index * HOP_SIZE)``, exactly."""
    return (np.asarray(index, dtype=np.int64) * _HOP_FRACTION.numerator) // _HOP_FRACTION.denominator


def frame_count(*, num_samples: int) -> int:
    """How many frames a signal of ``num_samples`` samples has: ``ceil(num_samples / HOP_SIZE)``."""
    return -((-num_samples * _HOP_FRACTION.denominator) // _HOP_FRACTION.numerator)


def samples_needed(*, num_frames: int) -> int:
    """How many samples must have arrived before frames ``0 .. num_frames - 1`` are complete."""
    if num_frames <= 0:
        return 0
    return int(frame_centre(index=num_frames - 1)) + HALF_FRAME


def _log_frequencies() -> np.ndarray:
    """Centre frequencies aligned to ``TUNING_HZ``, ``BANDS_PER_OCTAVE`` per octave, in [FMIN, FMAX]."""
    lowest = math.floor(math.log2(FMIN_HZ / TUNING_HZ) * BANDS_PER_OCTAVE)
    highest = math.ceil(math.log2(FMAX_HZ / TUNING_HZ) * BANDS_PER_OCTAVE)
    frequencies = TUNING_HZ * 2.0 ** (np.arange(lowest, highest) / BANDS_PER_OCTAVE)
    return frequencies[(frequencies >= FMIN_HZ) & (frequencies <= FMAX_HZ)]


def _nearest_unique_bins(*, frequencies: np.ndarray, bin_frequencies: np.ndarray) -> np.ndarray:
    """The FFT bin nearest to each frequency, with duplicates merged (sorted, unique)."""
    upper = np.clip(np.searchsorted(bin_frequencies, frequencies), 1, len(bin_frequencies) - 1)
    lower_distance = frequencies - bin_frequencies[upper - 1]
    upper_distance = bin_frequencies[upper] - frequencies
    nearest = upper - (lower_distance < upper_distance)
    return np.unique(nearest)


def filterbank() -> np.ndarray:
    """The logarithmic triangular filterbank, ``(NUM_BINS, NUM_BANDS)`` float32, each filter of area 1.

    Consecutive triples of unique bins give (start, centre, stop); a filter rises linearly from 0 at
    ``start`` to 1 at ``centre`` and falls back towards 0 before ``stop``. Filters too narrow to have a
    slope cover a single bin.
    """
    bin_frequencies = np.fft.rfftfreq(FRAME_SIZE, d=1.0 / SAMPLE_RATE)[:NUM_BINS]
    bins = _nearest_unique_bins(frequencies=_log_frequencies(), bin_frequencies=bin_frequencies)
    num_bands = len(bins) - 2
    bank = np.zeros((NUM_BINS, num_bands), dtype=np.float64)
    for band in range(num_bands):
        start, centre, stop = (int(b) for b in bins[band : band + 3])
        if stop - start < 2:
            centre, stop = start, start + 1
        bank[start:centre, band] = np.linspace(0.0, 1.0, centre - start, endpoint=False)
        bank[centre:stop, band] = np.linspace(1.0, 0.0, stop - centre, endpoint=False)
        bank[:, band] /= bank[:, band].sum()
    if num_bands != NUM_BANDS:
        raise AssertionError(f"filterbank has {num_bands} bands, the contract says {NUM_BANDS}")
    return bank.astype(FEATURE_DTYPE)


_FILTERBANK = filterbank()
_FILTERBANK_64 = _FILTERBANK.astype(np.float64)
_WINDOW_64 = np.hanning(FRAME_SIZE)


@dataclass(frozen=True)
class FrameBlock:
    """Per-frame, not yet normalised features of consecutive frames.

    ``linear``: ``(num_frames, NUM_BANDS)`` float32 filtered magnitudes ``M``.
    ``power``: ``(num_frames,)`` float64, each frame's mean square of its raw samples.
    """

    linear: np.ndarray
    power: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.linear.shape[0])

    @staticmethod
    def empty() -> "FrameBlock":
        return FrameBlock(
            linear=np.zeros((0, NUM_BANDS), dtype=FEATURE_DTYPE), power=np.zeros(0, dtype=np.float64)
        )

    @staticmethod
    def concatenate(*, blocks: list["FrameBlock"]) -> "FrameBlock":
        if not blocks:
            return FrameBlock.empty()
        return FrameBlock(
            linear=np.concatenate([b.linear for b in blocks], axis=0),
            power=np.concatenate([b.power for b in blocks], axis=0),
        )

    def slice(self, *, start: int, stop: int) -> "FrameBlock":
        return FrameBlock(linear=self.linear[start:stop], power=self.power[start:stop])


def _frames_from_padded(*, padded: np.ndarray, offsets: np.ndarray) -> FrameBlock:
    """Analyse frames starting at ``offsets`` within ``padded`` (1-D float32)."""
    if len(offsets) == 0:
        return FrameBlock.empty()
    index = offsets[:, None] + np.arange(FRAME_SIZE)[None, :]
    frames = padded[index].astype(np.float64)  # (num_frames, FRAME_SIZE)
    power = np.mean(np.square(frames), axis=1)
    # float64 throughout, rounded once at the end, so that the result of a frame does not depend on
    # how many frames were analysed together (streaming equals batch bit for bit).
    spectrum = np.abs(np.fft.rfft(frames * _WINDOW_64, axis=1))[:, :NUM_BINS]
    return FrameBlock(linear=(spectrum @ _FILTERBANK_64).astype(FEATURE_DTYPE), power=power)


def analyse(*, samples: np.ndarray) -> FrameBlock:
    """Batch analysis of a whole mono signal at ``SAMPLE_RATE``.

    ``samples``: ``(num_samples,)``. Returns ``ceil(num_samples / HOP_SIZE)`` frames.
    """
    samples = np.asarray(samples, dtype=FEATURE_DTYPE)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples of shape (num_samples,), got {samples.shape}")
    num_frames = frame_count(num_samples=len(samples))
    padded_length = samples_needed(num_frames=num_frames) + HALF_FRAME
    padded = np.zeros(padded_length, dtype=FEATURE_DTYPE)
    padded[HALF_FRAME : HALF_FRAME + len(samples)] = samples
    offsets = np.asarray(frame_centre(index=np.arange(num_frames)), dtype=np.int64)
    return _frames_from_padded(padded=padded, offsets=offsets)


def window_gain(*, power: np.ndarray) -> float:
    """The amplitude gain ``g`` of a window whose frames have mean squares ``power`` ``(num_frames,)``."""
    rms = math.sqrt(float(np.mean(power))) if len(power) else 0.0
    return 1.0 / max(rms, RMS_FLOOR)


def normalise(*, block: FrameBlock) -> np.ndarray:
    """``log10(1 + g * M)`` for one analysis window, ``(num_frames, NUM_BANDS)`` float32."""
    gain = FEATURE_DTYPE(window_gain(power=block.power))
    return np.log10(1.0 + gain * block.linear, dtype=FEATURE_DTYPE)


def loop_pad(*, block: FrameBlock, num_frames: int = NUM_FRAMES) -> FrameBlock:
    """Fill a window shorter than ``num_frames`` by repeating its frames from the start (looping).

    The model always sees a full-length window of real material at the real level. Used for clips
    shorter than 10 s and while the live daemon warms up. An empty block stays empty.
    """
    if block.num_frames >= num_frames or block.num_frames == 0:
        return block
    repeats = np.arange(num_frames) % block.num_frames
    return FrameBlock(linear=block.linear[repeats], power=block.power[repeats])


def window_starts(*, total_frames: int, hop_frames: int, num_frames: int = NUM_FRAMES) -> list[int]:
    """Start frames of sliding windows; the last window ends at the last frame. Short input: ``[0]``."""
    if total_frames <= num_frames:
        return [0]
    starts = list(range(0, total_frames - num_frames + 1, hop_frames))
    if starts[-1] != total_frames - num_frames:
        starts.append(total_frames - num_frames)
    return starts


def window_at(*, block: FrameBlock, start: int, num_frames: int = NUM_FRAMES) -> tuple[np.ndarray, bool]:
    """The normalised window of ``num_frames`` frames from ``start``: ``((num_frames, NUM_BANDS), padded)``.

    ``padded`` is True when the block was too short and the window was loop-padded.
    """
    part = block.slice(start=start, stop=start + num_frames)
    padded = part.num_frames < num_frames
    return normalise(block=loop_pad(block=part, num_frames=num_frames)), padded


def complete_frames(*, num_samples: int) -> int:
    """Frames whose every sample lies within the first ``num_samples`` samples: the largest ``n`` with
    ``samples_needed(num_frames=n) <= num_samples`` (live, before the end)."""
    past_centre = num_samples - HALF_FRAME
    return 0 if past_centre < 0 else -((-(past_centre + 1) * _HOP_FRACTION.denominator) // _HOP_FRACTION.numerator)


class FrameStream(StreamFramer[FrameBlock]):
    """Streaming analysis (:class:`~mer_live.features.framing.StreamFramer`): feed samples as they arrive,
    get the frames that became complete, :class:`FrameBlock`; feeding a signal in any chunking and then
    calling :meth:`flush` yields exactly the frames of :func:`analyse` on the whole signal."""

    def __init__(self) -> None:
        super().__init__(
            lead=HALF_FRAME, length=FRAME_SIZE,
            start=lambda index: np.asarray(frame_centre(index=index), dtype=np.int64),  # centre - HALF_FRAME + lead
            complete=lambda num_samples: complete_frames(num_samples=num_samples),
            total=lambda num_samples: frame_count(num_samples=num_samples),
            compute=_frames_from_padded, empty=FrameBlock.empty,
        )


class RollingWindow:
    """The last ``NUM_FRAMES`` frames, kept in preallocated arrays, and their normalised window."""

    def __init__(self, *, num_frames: int = NUM_FRAMES) -> None:
        self._capacity = num_frames
        self._linear = np.zeros((num_frames, NUM_BANDS), dtype=FEATURE_DTYPE)
        self._power = np.zeros(num_frames, dtype=np.float64)
        self._filled = 0

    @property
    def filled(self) -> int:
        """How many real frames the window holds (up to ``num_frames``)."""
        return self._filled

    @property
    def is_full(self) -> bool:
        return self._filled >= self._capacity

    def process(self, *, block: FrameBlock) -> None:
        """Append new frames, dropping the oldest."""
        incoming = block.num_frames
        if incoming == 0:
            return
        if incoming >= self._capacity:
            self._linear[:] = block.linear[-self._capacity :]
            self._power[:] = block.power[-self._capacity :]
            self._filled = self._capacity
            return
        keep = self._capacity - incoming
        self._linear[:keep] = self._linear[incoming:]
        self._power[:keep] = self._power[incoming:]
        self._linear[keep:] = block.linear
        self._power[keep:] = block.power
        self._filled = min(self._capacity, self._filled + incoming)

    def frames(self) -> FrameBlock:
        """The real frames held, oldest first: ``(filled, NUM_BANDS)``."""
        start = self._capacity - self._filled
        return FrameBlock(linear=self._linear[start:], power=self._power[start:])

    def window(self) -> np.ndarray:
        """The model input ``(num_frames, NUM_BANDS)``: loop-padded while warming up."""
        return normalise(block=loop_pad(block=self.frames(), num_frames=self._capacity))

    def reset(self) -> None:
        self._linear[:] = 0.0
        self._power[:] = 0.0
        self._filled = 0

    def close(self) -> None:
        self.reset()


def to_mono(*, audio: np.ndarray, channel: int | None = None) -> np.ndarray:
    """``(num_samples, num_channels)`` or ``(num_samples,)`` -> ``(num_samples,)`` float32.

    ``channel`` picks one channel (0-based); ``None`` averages them.
    """
    audio = np.asarray(audio, dtype=FEATURE_DTYPE)
    if audio.ndim == 1:
        return audio
    if channel is not None:
        if not 0 <= channel < audio.shape[1]:
            raise ValueError(f"channel {channel} does not exist; the input has {audio.shape[1]} channels")
        return np.ascontiguousarray(audio[:, channel])
    if audio.shape[1] == STEREO:  # the same float32 sum and halving as the mean, 20 times faster than a
        return (audio[:, 0] + audio[:, 1]) / FEATURE_DTYPE(STEREO)  # reduction over an axis of 2
    return audio.mean(axis=1, dtype=FEATURE_DTYPE)


def resample(*, samples: np.ndarray, source_rate: float, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono ``(num_samples,)`` from ``source_rate`` to ``target_rate`` (soxr, high quality)."""
    if source_rate == target_rate:
        return np.asarray(samples, dtype=FEATURE_DTYPE)
    import soxr

    return soxr.resample(samples, source_rate, target_rate, quality="HQ").astype(FEATURE_DTYPE)
