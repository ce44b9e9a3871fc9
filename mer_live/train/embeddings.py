"""musicnn patch embeddings of every clip, computed once with the converted backbone and cached.

A clip is read, mixed to mono and resampled to 16 kHz; its log-mel spectrogram is librosa's
``melspectrogram(sr=16000, n_fft=512, hop_length=256, n_mels=96)`` (``center=True``, zero padding, power
2, Slaney mel), time-major, then ``log10(1 + 10000 * S)`` in float32 (librosa is the reference that the
run-time numpy front-end, :mod:`mer_live.features.mel`, equals to float32 rounding; the constants are its). Patches of ``PATCH_FRAMES`` = 187 frames (2.99 s) start
every ``PATCH_HOP_FRAMES`` = 31 frames (0.496 s); the backbone (``models/musicnn/musicnn_mtt.onnx``, ONNX
Runtime, one thread) maps each patch to ``max_pool`` and ``mean_pool`` ``(753,)`` each and
``penultimate`` ``(200,)``.

Cached per clip in ``$MER_CACHE_DIR/musicnn/`` as ``.npz``, keyed by the audio file's SHA-256, the
backbone file's SHA-256, these constants and the augmentation, so nothing stale is ever reused.

Augmentations (:func:`augment`) imitate a stage: gain, an EQ tilt, room reverb, microphone noise and a
±1 semitone shift. Each augmented set draws one random chain per clip from a seed; its patches start
every ``AUGMENTED_HOP_FRAMES`` (0.99 s), to halve the backbone's time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mer_live import audio
from mer_live.features import mel
from . import cache

SAMPLE_RATE = mel.SAMPLE_RATE
FFT_SIZE = mel.FFT_SIZE
HOP_SIZE = mel.HOP_SIZE
NUM_BANDS = mel.NUM_BANDS
LOG_SCALE = mel.LOG_SCALE
PATCH_FRAMES = mel.PATCH_FRAMES
PATCH_HOP_FRAMES = 31
FPS = mel.FPS  # 62.5 frames per second
PATCH_HOP_SECONDS = PATCH_HOP_FRAMES / FPS  # 0.496 s
AUGMENTED_HOP_FRAMES = 2 * PATCH_HOP_FRAMES  # augmented sets: half the patches, half the backbone time
POOL_SIZE = 753
PENULTIMATE_SIZE = 200
MUSICNN_DIR = Path(__file__).resolve().parent.parent.parent / "models" / "musicnn"
# backbone -> the musicnn checkpoint it was converted from (named in licence notices): the same network,
# trained on MagnaTagATune (mtt) or on the Million Song Dataset's Last.fm tags (msd)
CHECKPOINTS = {"mtt": "MTT_musicnn", "msd": "MSD_musicnn"}
# convert_musicnn.py's files per backbone: the graph, and its back-end's weights (for fine-tuning)
BACKBONES = {name: MUSICNN_DIR / f"musicnn_{name}.onnx" for name in CHECKPOINTS}
BACKENDS = {name: MUSICNN_DIR / f"musicnn_{name}_backend.npz" for name in CHECKPOINTS}
DEFAULT_BACKBONE = "mtt"
BACKBONE_PATH = BACKBONES[DEFAULT_BACKBONE]
BACKBONE_INPUT = "mel"
BACKBONE_OUTPUTS = ("max_pool", "mean_pool", "penultimate")
CACHE_SUBDIR = "musicnn"
CACHE_FORMAT = 1
BATCH = 32
CLEAN = "clean"
SPARSE = "sparse"  # clean audio, patches every AUGMENTED_HOP_FRAMES (the long 4q-dev clips: half the backbone time)

FRONTEND_CONSTANTS = mel.FRONTEND_CONSTANTS  # the run-time front-end the model is trained for

# augmentation ranges (one stage-like chain per clip)
GAIN_DB = (-18.0, 6.0)
TILT_DB_PER_OCTAVE = (-3.0, 3.0)
TILT_PIVOT_HZ = 1000.0
REVERB_PROBABILITY = 0.6
REVERB_RT60_S = (0.3, 1.5)
REVERB_WET = (0.1, 0.5)
NOISE_PROBABILITY = 0.7
NOISE_SNR_DB = (15.0, 35.0)
SHIFT_SEMITONES = (-1, 0, 1)


@dataclass(frozen=True)
class ClipEmbeddings:
    """One clip's patches: ``max_pool``, ``mean_pool`` ``(num_patches, 753)``, ``penultimate`` ``(num_patches, 200)``."""

    max_pool: np.ndarray
    mean_pool: np.ndarray
    penultimate: np.ndarray

    @property
    def num_patches(self) -> int:
        return int(self.penultimate.shape[0])


def load_audio(*, path: Path) -> np.ndarray:
    """Decode, mix to mono and resample to 16 kHz (soxr HQ): ``(num_samples,)`` float32 (:mod:`mer_live.audio`)."""
    return audio.load_audio(path=path, target_rate=SAMPLE_RATE)


def log_mel(*, samples: np.ndarray) -> np.ndarray:
    """musicnn's input, by librosa: ``(num_frames, 96)`` float32, ``num_frames = 1 + len(samples) // 256``."""
    import librosa

    power = librosa.feature.melspectrogram(
        y=np.asarray(samples, dtype=np.float32), sr=SAMPLE_RATE, n_fft=FFT_SIZE, hop_length=HOP_SIZE,
        n_mels=NUM_BANDS, center=True, pad_mode="constant", power=2.0,
    )
    return np.log10(1.0 + LOG_SCALE * power.T).astype(np.float32)


def patch_starts(*, num_frames: int, hop_frames: int = PATCH_HOP_FRAMES) -> np.ndarray:
    """First frame of each whole patch; a clip shorter than one patch gives one (zero-padded) patch."""
    if num_frames <= PATCH_FRAMES:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, num_frames - PATCH_FRAMES + 1, hop_frames, dtype=np.int64)


def patches(*, mel: np.ndarray, hop_frames: int = PATCH_HOP_FRAMES) -> np.ndarray:
    """``(num_patches, 187, 96)`` patches of ``mel`` ``(num_frames, 96)``."""
    if mel.shape[0] < PATCH_FRAMES:
        mel = np.concatenate([mel, np.zeros((PATCH_FRAMES - mel.shape[0], NUM_BANDS), mel.dtype)])
    return np.stack([mel[s : s + PATCH_FRAMES] for s in patch_starts(num_frames=mel.shape[0], hop_frames=hop_frames)])


def backbone_path(*, context_frames: int = PATCH_FRAMES, backbone: str = DEFAULT_BACKBONE) -> Path:
    """The file of ``backbone`` (a key of :data:`BACKBONES`) that hears the last ``context_frames`` frames of
    each 187-frame patch: the converted file itself for the whole patch, else a copy cut by
    :func:`shorten_backbone` (built once, in the cache, named by the converted file's hash so that a new
    conversion is never shortened from a stale copy)."""
    converted = BACKBONES[backbone]
    if context_frames == PATCH_FRAMES:
        return converted
    source = cache.file_hash(path=converted)[: cache.VERSION_DIGITS]
    target = cache.cache_dir() / CACHE_SUBDIR / f"{converted.stem}_{source}_ctx{context_frames}.onnx"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        shorten_backbone(source=converted, target=temporary, context_frames=context_frames)
        temporary.replace(target)
    return target


def shorten_backbone(*, source: Path, target: Path, context_frames: int) -> None:
    """Write a copy of the backbone ``source`` that still reads ``(batch, 187, 96)`` patches but hears only
    their last ``context_frames`` frames (a shorter context reacts sooner to a change in the music).

    musicnn is fully convolutional in time ("same" padding, then max and mean over time), so a shorter input
    is only a matter of shapes: a ``Slice`` of the last ``context_frames`` frames goes in front, and the
    reshape targets that name the 187 frames name ``context_frames`` instead.
    """
    import onnx
    from onnx import helper, numpy_helper

    if not 1 <= context_frames <= PATCH_FRAMES:
        raise ValueError(f"context_frames must be 1-{PATCH_FRAMES}, got {context_frames}")
    proto = onnx.load(str(source))
    graph = proto.graph
    reshape_shapes = {node.input[1] for node in graph.node if node.op_type == "Reshape"}
    for index, tensor in enumerate(graph.initializer):
        if tensor.name in reshape_shapes:
            shape = numpy_helper.to_array(tensor).copy()
            shape[shape == PATCH_FRAMES] = context_frames
            graph.initializer[index].CopyFrom(numpy_helper.from_array(shape, tensor.name))
    heard = f"{BACKBONE_INPUT}_last_{context_frames}"
    for node in graph.node:
        node.input[:] = [heard if name == BACKBONE_INPUT else name for name in node.input]
    bounds = {"starts": [PATCH_FRAMES - context_frames], "ends": [PATCH_FRAMES], "axes": [1]}
    graph.initializer.extend(numpy_helper.from_array(np.array(v, dtype=np.int64), f"{heard}_{k}") for k, v in bounds.items())
    graph.node.insert(0, helper.make_node("Slice", [BACKBONE_INPUT, *(f"{heard}_{k}" for k in bounds)], [heard],
                                          name=f"{heard}_slice"))
    del graph.value_info[:]  # the inner time axis changed; ONNX Runtime infers the shapes again
    onnx.checker.check_model(proto)
    onnx.save(proto, str(target))


class Backbone:
    """A converted musicnn backbone under ONNX Runtime (one thread)."""

    def __init__(self, *, path: Path = BACKBONE_PATH, threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.path = Path(path)
        self._session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def process(self, *, batch: np.ndarray) -> ClipEmbeddings:
        """Embeddings of ``batch`` ``(num_patches, 187, 96)``."""
        parts = {name: [] for name in BACKBONE_OUTPUTS}
        for start in range(0, len(batch), BATCH):
            outputs = self._session.run(list(BACKBONE_OUTPUTS), {BACKBONE_INPUT: batch[start : start + BATCH]})
            for name, value in zip(BACKBONE_OUTPUTS, outputs):
                parts[name].append(value)
        return ClipEmbeddings(**{name: np.concatenate(values) for name, values in parts.items()})


# ---------------------------------------------------------------------------------------------- augmentation


def _tilt(*, samples: np.ndarray, db_per_octave: float) -> np.ndarray:
    """A spectral tilt of ``db_per_octave`` around ``TILT_PIVOT_HZ`` (zero-phase, in the frequency domain)."""
    spectrum = np.fft.rfft(samples)
    frequency = np.fft.rfftfreq(len(samples), d=1.0 / SAMPLE_RATE)
    octaves = np.log2(np.maximum(frequency, 20.0) / TILT_PIVOT_HZ)
    return np.fft.irfft(spectrum * 10.0 ** (db_per_octave * octaves / 20.0), n=len(samples)).astype(np.float32)


def _reverb(*, samples: np.ndarray, rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    """Convolution with an exponentially decaying noise tail of reverberation time ``rt60`` seconds."""
    from scipy.signal import fftconvolve

    length = int(rt60 * SAMPLE_RATE)
    decay = np.exp(-6.9078 * np.arange(length) / length)  # -60 dB at rt60
    response = rng.standard_normal(length) * decay
    response /= np.sqrt(np.sum(response**2))
    tail = fftconvolve(samples, response)[: len(samples)]
    return ((1.0 - wet) * samples + wet * tail).astype(np.float32)


def _noise(*, samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add pink-ish (1/f) noise ``snr_db`` below the signal's power."""
    white = np.fft.rfft(rng.standard_normal(len(samples)))
    frequency = np.maximum(np.fft.rfftfreq(len(samples), d=1.0 / SAMPLE_RATE), 20.0)
    pink = np.fft.irfft(white / np.sqrt(frequency), n=len(samples))
    power = float(np.mean(samples**2)) + 1e-12
    pink *= np.sqrt(power / (np.mean(pink**2) + 1e-12) / 10.0 ** (snr_db / 10.0))
    return (samples + pink).astype(np.float32)


def _shift(*, samples: np.ndarray, semitones: int) -> np.ndarray:
    """Shift pitch by ``semitones`` by resampling (varispeed: the tempo moves with it, by 6 % per semitone)."""
    if semitones == 0:
        return samples
    import soxr

    ratio = 2.0 ** (semitones / 12.0)
    return soxr.resample(samples, SAMPLE_RATE * ratio, SAMPLE_RATE, quality="HQ").astype(np.float32)


def augment(*, samples: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One random stage-like chain: shift, tilt, reverb, noise, gain (in that order). Returns audio and recipe."""
    recipe = {
        "shift_semitones": int(rng.choice(SHIFT_SEMITONES)),
        "tilt_db_per_octave": float(rng.uniform(*TILT_DB_PER_OCTAVE)),
        "reverb": bool(rng.random() < REVERB_PROBABILITY),
        "noise": bool(rng.random() < NOISE_PROBABILITY),
        "gain_db": float(rng.uniform(*GAIN_DB)),
    }
    out = _shift(samples=samples, semitones=recipe["shift_semitones"])
    out = _tilt(samples=out, db_per_octave=recipe["tilt_db_per_octave"])
    if recipe["reverb"]:
        recipe["rt60_s"] = float(rng.uniform(*REVERB_RT60_S))
        recipe["wet"] = float(rng.uniform(*REVERB_WET))
        out = _reverb(samples=out, rt60=recipe["rt60_s"], wet=recipe["wet"], rng=rng)
    if recipe["noise"]:
        recipe["snr_db"] = float(rng.uniform(*NOISE_SNR_DB))
        out = _noise(samples=out, snr_db=recipe["snr_db"], rng=rng)
    out = out * np.float32(10.0 ** (recipe["gain_db"] / 20.0))
    return np.clip(out, -1.0, 1.0).astype(np.float32), recipe


def augmentation_seed(*, set_name: str, clip_hash: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{set_name}:{clip_hash}".encode()).digest()[:8], "little")


# -------------------------------------------------------------------------------------------------- caching


def hop_frames_of(*, set_name: str) -> int:
    return PATCH_HOP_FRAMES if set_name == CLEAN else AUGMENTED_HOP_FRAMES


def is_augmented(*, set_name: str) -> bool:
    return set_name not in (CLEAN, SPARSE)


def _version(*, backbone: Path, set_name: str) -> str:
    text = json.dumps({"format": CACHE_FORMAT, "frontend": FRONTEND_CONSTANTS, "hop": hop_frames_of(set_name=set_name),
                       "backbone": cache.file_hash(path=backbone), "set": set_name}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[: cache.VERSION_DIGITS]


def embeddings_for(
    *, path: Path, backbone: Backbone, set_name: str = CLEAN, version: str | None = None,
    directory: Path | None = None,
) -> ClipEmbeddings:
    """The clip's patch embeddings for ``set_name`` (``clean`` or an augmented set), cached."""
    directory = (cache.cache_dir() if directory is None else Path(directory)) / CACHE_SUBDIR
    version = version or _version(backbone=backbone.path, set_name=set_name)
    clip_hash = cache.file_hash(path=path)
    target = directory / f"{clip_hash}-{version}.npz"
    if target.is_file():
        with np.load(target) as stored:
            return ClipEmbeddings(**{name: stored[name] for name in BACKBONE_OUTPUTS})
    samples = load_audio(path=path)
    if is_augmented(set_name=set_name):
        samples, _ = augment(samples=samples, rng=np.random.default_rng(augmentation_seed(set_name=set_name, clip_hash=clip_hash)))
    result = backbone.process(batch=patches(mel=log_mel(samples=samples), hop_frames=hop_frames_of(set_name=set_name)))
    directory.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp.npz")
    np.savez(temporary, **{name: getattr(result, name) for name in BACKBONE_OUTPUTS})
    temporary.replace(target)
    return result


def set_key(*, set_name: str, context_frames: int = PATCH_FRAMES, backbone: str = DEFAULT_BACKBONE) -> str:
    """The key of an embedding set: its name, with ``@<context_frames>`` when the backbone hears less than a
    patch, after ``<backbone>:`` when the backbone is not the default one."""
    key = set_name if context_frames == PATCH_FRAMES else f"{set_name}@{context_frames}"
    return key if backbone == DEFAULT_BACKBONE else f"{backbone}:{key}"


def load_set(
    *, paths: list[Path], set_name: str = CLEAN, context_frames: int = PATCH_FRAMES,
    backbone: str = DEFAULT_BACKBONE, progress: bool = True,
) -> list[ClipEmbeddings]:
    """Embeddings of every clip of ``paths`` (building missing cache entries), by ``backbone``'s file that
    hears the last ``context_frames`` frames of each patch."""
    key = set_key(set_name=set_name, context_frames=context_frames, backbone=backbone)
    network_path = backbone_path(context_frames=context_frames, backbone=backbone)
    network = Backbone(path=network_path)
    version = _version(backbone=network_path, set_name=set_name)
    return [
        embeddings_for(path=clip_path, backbone=network, set_name=set_name, version=version)
        for clip_path in tqdm(paths, desc=f"embeddings {key}", unit="clip", disable=not progress)
    ]
