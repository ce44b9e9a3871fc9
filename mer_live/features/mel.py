"""The v2 front-end: mono 16 kHz audio -> musicnn's 96-band log-mel frames and 3 s patches (numpy only).

It reproduces ``librosa.feature.melspectrogram(y, sr=16000, n_fft=512, hop_length=256, n_mels=96)``
(``center=True`` with zero padding, librosa's default ``pad_mode="constant"``; a periodic Hann window;
power 2; the Slaney mel scale with Slaney area normalisation, 0 Hz to 8 kHz), then
``log10(1 + 10000 * S)``, as musicnn (Pons & Serra, MTG-UPF) computes its input. One implementation
serves training, offline analysis and the live daemon; librosa is only the tests' reference.

* Frame ``i`` is centred on sample ``i * HOP_SIZE``; samples before the start and after the end of the
  signal are zeros, so ``n`` samples make ``1 + n // HOP_SIZE`` frames, the count librosa gives.
* Edges: every frame, the first ones included, equals librosa's with ``pad_mode="constant"`` (the default
  since librosa 0.10), to float32 rounding. librosa before 0.10 (which musicnn was trained with) padded
  by reflection, so its first frame (and only that one: the pad is half a frame) differs from ours.
  At the end, a live stream emits a frame once its last sample has arrived; :meth:`MelStream.flush`
  then zero-pads the last frame or two exactly as the batch analysis does.
* Every frame is computed in float64 and rounded to float32 once, at the end, so a frame's value does
  not depend on how many frames were analysed together: streaming equals batch bit for bit (tested).
* musicnn itself cast ``S`` to float16 before the logarithm; we keep float32 (the model is trained on
  this front-end's output, so training and run time agree exactly).

A model patch is ``PATCH_FRAMES`` = 187 consecutive frames (2.992 s), time-major ``(187, 96)``.
"""

from __future__ import annotations


import numpy as np

from mer_live.features import spectrogram
from mer_live.features.framing import StreamFramer

KIND = "musicnn-mel96"
SAMPLE_RATE = 16000
FFT_SIZE = 512
HOP_SIZE = 256
HALF_FRAME = FFT_SIZE // 2
NUM_BINS = FFT_SIZE // 2 + 1
NUM_BANDS = 96
FMIN_HZ = 0.0
FMAX_HZ = SAMPLE_RATE / 2.0
LOG_SCALE = 10000.0
PATCH_FRAMES = 187
FPS = SAMPLE_RATE / HOP_SIZE  # 62.5 frames per second
PATCH_SECONDS = PATCH_FRAMES / FPS  # 2.992 s
FEATURE_DTYPE = np.float32

# The Slaney mel scale (librosa's htk=False): linear below 1 kHz, logarithmic above.
_SLANEY_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_LOG_START_HZ = 1000.0
_SLANEY_LOG_START_MEL = _SLANEY_LOG_START_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = np.log(6.4) / 27.0

# Every constant a model must agree with, as stored in the ONNX metadata ``mer_live.frontend``.
FRONTEND_CONSTANTS: dict[str, float | int | str] = {
    "kind": KIND,
    "sample_rate": SAMPLE_RATE,
    "n_fft": FFT_SIZE,
    "hop_length": HOP_SIZE,
    "n_mels": NUM_BANDS,
    "fmin_hz": FMIN_HZ,
    "fmax_hz": FMAX_HZ,
    "window": "hann",
    "power": 2.0,
    "mel_scale": "slaney",
    "mel_norm": "slaney",
    "magnitude": "log10(1 + 10000 * S)",
    "patch_frames": PATCH_FRAMES,
}


def hz_to_mel(*, hz: np.ndarray) -> np.ndarray:
    """Slaney mel of ``hz`` (any shape)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _SLANEY_HZ_PER_MEL
    logarithmic = _SLANEY_LOG_START_MEL + np.log(np.maximum(hz, _SLANEY_LOG_START_HZ) / _SLANEY_LOG_START_HZ) / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_LOG_START_HZ, logarithmic, linear)


def mel_to_hz(*, mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _SLANEY_HZ_PER_MEL
    logarithmic = _SLANEY_LOG_START_HZ * np.exp(_SLANEY_LOG_STEP * (mel - _SLANEY_LOG_START_MEL))
    return np.where(mel >= _SLANEY_LOG_START_MEL, logarithmic, linear)


def mel_filterbank() -> np.ndarray:
    """The Slaney-normalised triangular mel filterbank, ``(NUM_BINS, NUM_BANDS)`` float64.

    Its values are rounded to float32 first, as librosa's ``filters.mel`` returns them, so that the
    reference and this front-end weigh the bins identically.
    """
    bin_hz = np.fft.rfftfreq(FFT_SIZE, d=1.0 / SAMPLE_RATE)
    edges_hz = mel_to_hz(mel=np.linspace(hz_to_mel(hz=FMIN_HZ), hz_to_mel(hz=FMAX_HZ), NUM_BANDS + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - bin_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    bank = np.maximum(0.0, np.minimum(rising, falling))
    bank *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return bank.astype(np.float32).astype(np.float64).T


_FILTERBANK = mel_filterbank()
_WINDOW = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(FFT_SIZE) / FFT_SIZE)  # periodic Hann, as librosa's


def frame_count(*, num_samples: int) -> int:
    """Frames of a signal of ``num_samples`` samples (``1 + num_samples // HOP_SIZE``, as librosa)."""
    return 1 + int(num_samples) // HOP_SIZE


def complete_frames(*, num_samples: int) -> int:
    """Frames whose every sample lies within the first ``num_samples`` samples (live, before the end)."""
    return max(0, (int(num_samples) - HALF_FRAME) // HOP_SIZE + 1) if num_samples >= HALF_FRAME else 0


def _frames_from_padded(*, padded: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Log-mel frames ``(len(offsets), NUM_BANDS)`` float32 of the frames starting at ``offsets``."""
    if len(offsets) == 0:
        return np.zeros((0, NUM_BANDS), dtype=FEATURE_DTYPE)
    index = offsets[:, None] + np.arange(FFT_SIZE)[None, :]
    frames = padded[index].astype(np.float64) * _WINDOW
    spectrum = np.fft.rfft(frames, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    return np.log10(1.0 + LOG_SCALE * (power @ _FILTERBANK)).astype(FEATURE_DTYPE)


def analyse(*, samples: np.ndarray) -> np.ndarray:
    """Batch analysis of a whole mono signal at ``SAMPLE_RATE``.

    ``samples``: ``(num_samples,)``. Returns ``(1 + num_samples // HOP_SIZE, NUM_BANDS)`` float32.
    """
    samples = np.asarray(samples, dtype=FEATURE_DTYPE)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples of shape (num_samples,), got {samples.shape}")
    num_frames = frame_count(num_samples=len(samples))
    padded = np.zeros((num_frames - 1) * HOP_SIZE + FFT_SIZE, dtype=FEATURE_DTYPE)
    padded[HALF_FRAME : HALF_FRAME + len(samples)] = samples
    return _frames_from_padded(padded=padded, offsets=np.arange(num_frames, dtype=np.int64) * HOP_SIZE)


def _no_frames() -> np.ndarray:
    return np.zeros((0, NUM_BANDS), dtype=FEATURE_DTYPE)


class MelStream(StreamFramer[np.ndarray]):
    """Streaming analysis (:class:`~mer_live.features.framing.StreamFramer`): feed samples as they arrive,
    get the log-mel frames ``(num_new, NUM_BANDS)`` float32 that became complete; feeding a signal in any
    chunking and then calling :meth:`flush` yields exactly :func:`analyse`."""

    def __init__(self) -> None:
        super().__init__(
            lead=HALF_FRAME, length=FFT_SIZE,
            start=lambda index: index * HOP_SIZE,
            complete=lambda num_samples: complete_frames(num_samples=num_samples),
            total=lambda num_samples: frame_count(num_samples=num_samples),
            compute=_frames_from_padded, empty=_no_frames,
        )


def loop_pad(*, frames: np.ndarray, num_frames: int = PATCH_FRAMES) -> np.ndarray:
    """``frames`` ``(n, NUM_BANDS)`` repeated from the start up to ``num_frames`` rows (``n`` >= 1).

    The model sees a full patch of real material: used for clips shorter than 3 s and while the
    live daemon warms up. Longer input is returned unchanged.
    """
    if len(frames) >= num_frames or len(frames) == 0:
        return frames
    return frames[np.arange(num_frames) % len(frames)]


def patch_starts(*, total_frames: int, hop_frames: int, num_frames: int = PATCH_FRAMES) -> list[int]:
    """Start frames of patches every ``hop_frames``, as the live daemon computes them: the first patch
    ends at frame ``num_frames - 1``, then one every ``hop_frames`` while it fits. Short input: ``[0]``."""
    if total_frames <= num_frames:
        return [0]
    return list(range(0, total_frames - num_frames + 1, hop_frames))


def resample(*, samples: np.ndarray, source_rate: float) -> np.ndarray:
    """Resample mono ``(num_samples,)`` from ``source_rate`` to ``SAMPLE_RATE`` (soxr, high quality)."""
    return spectrogram.resample(samples=samples, source_rate=source_rate, target_rate=SAMPLE_RATE)
