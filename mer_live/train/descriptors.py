"""Mid-level validity: signal descriptors (librosa) that each mid-level output should track.

Our mid-level outputs are trained on targets derived from emotion ratings, so their agreement with
the poster's mid-level/emotion table is circular. This module checks them against something
independent: one measurable descriptor of the audio per mid-level feature, computed with librosa
(training and benchmark side only; never imported by the runtime).

=================  ==========================================================  =========
mid-level          descriptor (per clip)                                       expected
=================  ==========================================================  =========
melodiousness      harmonicity: harmonic share of the energy (HPSS)            +
articulation       onset sharpness: mean onset-strength peak over its median   +
rhythm_complexity  onset-interval entropy (bits, log-spaced interval bins)     +
rhythm_stability   tempogram peak clarity: best 30-240 BPM autocorrelation     +
dissonance         sensory roughness of spectral peaks (Plomp-Levelt/Sethares) +
tonal_stability    key clarity: best Krumhansl-Kessler key-profile correlation +
minorness          best minor-key minus best major-key profile correlation     +
=================  ==========================================================  =========

Every descriptor is computed on the clip's mono audio at ``DESCRIPTOR_RATE`` and cached per clip in
``$MER_CACHE_DIR`` (named by the audio's SHA-256 and :data:`DESCRIPTOR_VERSION`).

**For the model card / D1:** given out-of-fold mid-level predictions ``(360, 7)`` (one row per
Soundtracks set-1 clip, in the order of ``clip_ids``), call

    from mer_live.train.descriptors import mid_level_validity
    table = mid_level_validity(mid, clip_ids=ids)   # builds missing cache entries (slow: ~1-2 s/clip)

which returns, per mid-level feature, Pearson ``r`` between the prediction and its descriptor, the
expected sign, and whether ``sign * r >= VALIDITY_GOAL_R`` (0.3); plus ``passing`` (how many of 7).
:func:`oof_mid_from_cv` reads the out-of-fold ``clip_mid`` of a ``mer-live-train cv`` run folder.

Compute the cache once (background, niced): ``nice python -m mer_live.train.descriptors --log FILE``;
then ``python -m mer_live.train.descriptors --model M.onnx --cv runs/cv/NAME --out validity.json`` prints
the tables (``--model``: in-sample predictions of a model file, labelled as not held out).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from mer_live.audio import load_audio
from mer_live.core import labels
from mer_live.train import soundtracks
from . import cache

LOG = logging.getLogger("mer_live.descriptors")

DESCRIPTOR_RATE = 22050
DESCRIPTOR_VERSION = "descriptors-1"
HOP = 512
N_FFT = 2048
VALIDITY_GOAL_R = 0.3
EXPECTED_SIGN = {mid: 1 for mid in labels.MID_LEVELS}  # every descriptor grows with its feature
BASE_DESCRIPTOR_NAMES = {  # the first descriptors (:func:`describe`); three are replaced, see SELECTED_VARIANT
    "melodiousness": "harmonicity (HPSS harmonic energy share)",
    "articulation": "onset sharpness (onset peak / median onset strength)",
    "rhythm_complexity": "onset-interval entropy (bits)",
    "rhythm_stability": "tempogram peak clarity (30-240 BPM)",
    "dissonance": "sensory roughness of spectral peaks",
    "tonal_stability": "key clarity (best key-profile r)",
    "minorness": "best minor minus best major key-profile r",
}
# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
TEMPO_RANGE_BPM = (30.0, 240.0)
INTERVAL_BINS = np.geomspace(0.05, 2.0, 17)  # onset intervals 50 ms - 2 s, 16 log-spaced bins
PEAKS_PER_FRAME = 16
PEAK_MIN_HZ = 50.0
PEAK_MAX_HZ = 5000.0
# Sethares' (1993) parametrisation of the Plomp-Levelt dissonance curve
ROUGHNESS_B1, ROUGHNESS_B2 = 3.5, 5.75
ROUGHNESS_S1, ROUGHNESS_S2 = 0.0207, 18.96
ROUGHNESS_DSTAR = 0.24
SILENT_FRAME_DB = -60.0


def _key_correlations(*, chroma_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r of a 12-bin chroma profile with the 12 rotations of each key profile: (major, minor)."""
    def rotations(profile: np.ndarray) -> np.ndarray:
        return np.stack([np.roll(profile, k) for k in range(12)])

    def r_rows(matrix: np.ndarray) -> np.ndarray:
        a = matrix - matrix.mean(axis=1, keepdims=True)
        b = chroma_mean - chroma_mean.mean()
        denominator = np.linalg.norm(a, axis=1) * np.linalg.norm(b)
        return (a @ b) / denominator if np.linalg.norm(b) > 0 else np.zeros(12)

    return r_rows(rotations(MAJOR_PROFILE)), r_rows(rotations(MINOR_PROFILE))


def _roughness(*, frequencies: np.ndarray, amplitudes: np.ndarray) -> float:
    """Sethares' sensory roughness of one frame's peaks, normalised by the squared total amplitude."""
    if len(frequencies) < 2:
        return 0.0
    f1, f2 = np.meshgrid(frequencies, frequencies, indexing="ij")
    a1, a2 = np.meshgrid(amplitudes, amplitudes, indexing="ij")
    upper = np.triu(np.ones_like(f1, dtype=bool), k=1)
    low, diff = np.minimum(f1, f2)[upper], np.abs(f1 - f2)[upper]
    s = ROUGHNESS_DSTAR / (ROUGHNESS_S1 * low + ROUGHNESS_S2)
    pairs = np.minimum(a1, a2)[upper] * (np.exp(-ROUGHNESS_B1 * s * diff) - np.exp(-ROUGHNESS_B2 * s * diff))
    return float(pairs.sum() / max(amplitudes.sum() ** 2, 1e-12))


def describe(samples: np.ndarray, *, rate: int = DESCRIPTOR_RATE) -> np.ndarray:
    """The 7 descriptors of one clip, ``(7,)`` float64 in :data:`mer_live.core.labels.MID_LEVELS` order.

    ``samples``: mono ``(num_samples,)`` at ``rate``.
    """
    import librosa
    import scipy.signal

    y = np.asarray(samples, dtype=np.float32)
    stft = librosa.stft(y, n_fft=N_FFT, hop_length=HOP)
    magnitude = np.abs(stft)
    # melodiousness: harmonic share of the energy
    harmonic, percussive = librosa.decompose.hpss(magnitude)
    harmonicity = float((harmonic**2).sum() / max((harmonic**2).sum() + (percussive**2).sum(), 1e-12))
    # onsets
    envelope = librosa.onset.onset_strength(S=librosa.amplitude_to_db(magnitude, ref=np.max), sr=rate, hop_length=HOP)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=rate, hop_length=HOP, units="frames")
    median = float(np.median(envelope)) if len(envelope) else 0.0
    sharpness = float(np.mean(envelope[onsets]) / max(median, 1e-6)) if len(onsets) else 0.0
    times = librosa.frames_to_time(onsets, sr=rate, hop_length=HOP)
    intervals = np.diff(times)
    histogram, _ = np.histogram(intervals, bins=INTERVAL_BINS)
    entropy = 0.0
    if histogram.sum() > 0:
        p = histogram[histogram > 0] / histogram.sum()
        entropy = float(-(p * np.log2(p)).sum())
    # rhythm stability: clarity of the best periodicity in the onset-strength autocorrelation
    frame_rate = rate / HOP
    lags = np.arange(len(envelope))
    bpm = np.where(lags > 0, 60.0 * frame_rate / np.maximum(lags, 1), np.inf)
    centred = envelope - envelope.mean()
    autocorrelation = np.correlate(centred, centred, mode="full")[len(centred) - 1 :]
    in_range = (bpm >= TEMPO_RANGE_BPM[0]) & (bpm <= TEMPO_RANGE_BPM[1])
    clarity = float(autocorrelation[in_range].max() / autocorrelation[0]) if autocorrelation[0] > 0 and in_range.any() else 0.0
    # dissonance: roughness of the strongest spectral peaks per frame, mean over non-silent frames
    bin_hz = librosa.fft_frequencies(sr=rate, n_fft=N_FFT)
    usable = (bin_hz >= PEAK_MIN_HZ) & (bin_hz <= PEAK_MAX_HZ)
    frame_db = librosa.amplitude_to_db(magnitude.max(axis=0), ref=float(magnitude.max()) or 1.0)
    roughness = []
    for index in np.flatnonzero(frame_db > SILENT_FRAME_DB):
        column = np.where(usable, magnitude[:, index], 0.0)
        peaks, _ = scipy.signal.find_peaks(column)
        if len(peaks) < 2:
            continue
        strongest = peaks[np.argsort(column[peaks])[-PEAKS_PER_FRAME:]]
        roughness.append(_roughness(frequencies=bin_hz[strongest], amplitudes=column[strongest]))
    rough = float(np.mean(roughness)) if roughness else 0.0
    # tonality: key-profile correlations of the clip's mean chroma
    chroma = librosa.feature.chroma_cqt(y=y, sr=rate, hop_length=HOP)
    major, minor = _key_correlations(chroma_mean=chroma.mean(axis=1))
    key_clarity = float(max(major.max(), minor.max()))
    minor_contrast = float(minor.max() - major.max())
    values = {
        "melodiousness": harmonicity,
        "articulation": sharpness,
        "rhythm_complexity": entropy,
        "rhythm_stability": clarity,
        "dissonance": rough,
        "tonal_stability": key_clarity,
        "minorness": minor_contrast,
    }
    return np.array([values[name] for name in labels.MID_LEVELS], dtype=np.float64)


# ---------------------------------------------------------------------------------------- descriptor variants
# Declared before any was computed: alternatives within the family for the three descriptors whose
# emotion profile disagrees with the human mid-level ratings' (rhythm_complexity, rhythm_stability,
# dissonance). A variant replaces the current descriptor ONLY by the model-free profile check
# (:func:`choose_variants`), never by how well any model tracks it.
VARIANT_VERSION = "variants-1"
CURRENT_VARIANT = {"rhythm_complexity": "ioi_entropy", "rhythm_stability": "acf_clarity", "dissonance": "roughness"}
VARIANT_NAMES = {
    "rhythm_complexity": {
        "ioi_entropy": "onset-interval entropy (bits, 16 log bins 50 ms-2 s)",
        "ioi_entropy_fine": "onset-interval entropy (bits, 32 log bins 25 ms-2 s)",
        "ioi_entropy_relative": "entropy of onset intervals over their median (bits, 16 log bins 1/8-8)",
        "ioi_entropy_weighted": "onset-interval entropy, intervals weighted by onset strength (bits)",
    },
    "rhythm_stability": {
        "acf_clarity": "tempogram peak clarity (30-240 BPM, whole-clip autocorrelation)",
        "tempogram_clarity_local": "local tempogram peak clarity (30-240 BPM, 8.9 s windows, mean over frames)",
        "fourier_tempogram_peak_ratio": "Fourier tempogram peak over mean (30-240 BPM, mean over frames)",
    },
    "dissonance": {
        "roughness": "sensory roughness of spectral peaks",
        "spectral_flatness": "spectral flatness (mean over non-silent frames)",
    },
}
VARIANT_MARGIN = 0.1  # a variant must beat the current descriptor's profile agreement by this much
VARIANT_MIN_ABS_R = 0.1  # ... and correlate with some rated emotion at least this much (else its profile is noise)
# The rule's outcome (``python -m mer_live.train.descriptors --variants --out models/descriptor_variants.json``):
# the validity descriptors from now on. rhythm_complexity's choice still disagrees with the human profile.
SELECTED_VARIANT = {"rhythm_complexity": "ioi_entropy_fine", "rhythm_stability": "fourier_tempogram_peak_ratio",
                    "dissonance": "spectral_flatness"}
DESCRIPTOR_NAMES = {name: VARIANT_NAMES[name][SELECTED_VARIANT[name]] if name in SELECTED_VARIANT else description
                    for name, description in BASE_DESCRIPTOR_NAMES.items()}
TEMPOGRAM_WINDOW = 384  # onset frames (8.9 s at hop 512)


def _entropy_bits(*, values: np.ndarray, bins: np.ndarray, weights: np.ndarray | None = None) -> float:
    histogram, _ = np.histogram(values, bins=bins, weights=weights)
    if histogram.sum() <= 0:
        return 0.0
    p = histogram[histogram > 0] / histogram.sum()
    return float(-(p * np.log2(p)).sum())


def describe_variants(samples: np.ndarray, *, rate: int = DESCRIPTOR_RATE) -> dict[str, float]:
    """The new variants of :data:`VARIANT_NAMES` of one clip (the current ones are in :func:`describe`).

    ``samples``: mono ``(num_samples,)`` at ``rate``. Returns ``{variant name: value}``.
    """
    import librosa

    y = np.asarray(samples, dtype=np.float32)
    magnitude = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
    envelope = librosa.onset.onset_strength(S=librosa.amplitude_to_db(magnitude, ref=np.max), sr=rate, hop_length=HOP)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=rate, hop_length=HOP, units="frames")
    intervals = np.diff(librosa.frames_to_time(onsets, sr=rate, hop_length=HOP))
    relative = intervals / np.median(intervals) if len(intervals) else intervals
    values = {
        "ioi_entropy_fine": _entropy_bits(values=intervals, bins=np.geomspace(0.025, 2.0, 33)),
        "ioi_entropy_relative": _entropy_bits(values=relative, bins=np.geomspace(1 / 8, 8, 17)),
        "ioi_entropy_weighted": _entropy_bits(values=intervals, bins=INTERVAL_BINS,
                                              weights=envelope[onsets[1:]] if len(onsets) > 1 else None),
    }
    frame_rate = rate / HOP
    tempogram = librosa.feature.tempogram(onset_envelope=envelope, sr=rate, hop_length=HOP, win_length=TEMPOGRAM_WINDOW)
    lags = np.arange(tempogram.shape[0])
    bpm = np.where(lags > 0, 60.0 * frame_rate / np.maximum(lags, 1), np.inf)
    in_range = (bpm >= TEMPO_RANGE_BPM[0]) & (bpm <= TEMPO_RANGE_BPM[1])
    values["tempogram_clarity_local"] = float(np.mean(tempogram[in_range].max(axis=0)))
    fourier = np.abs(librosa.feature.fourier_tempogram(onset_envelope=envelope, sr=rate, hop_length=HOP,
                                                       win_length=TEMPOGRAM_WINDOW))
    tempi = librosa.fourier_tempo_frequencies(sr=rate, hop_length=HOP, win_length=TEMPOGRAM_WINDOW)
    band = fourier[(tempi >= TEMPO_RANGE_BPM[0]) & (tempi <= TEMPO_RANGE_BPM[1])]
    values["fourier_tempogram_peak_ratio"] = float(np.mean(band.max(axis=0) / np.maximum(band.mean(axis=0), 1e-12)))
    frame_db = librosa.amplitude_to_db(magnitude.max(axis=0), ref=float(magnitude.max()) or 1.0)
    flatness = librosa.feature.spectral_flatness(S=magnitude)[0]
    loud = frame_db > SILENT_FRAME_DB
    values["spectral_flatness"] = float(np.mean(flatness[loud])) if loud.any() else 0.0
    return values


def variants_for(*, path: Path, directory: Path | None = None) -> dict[str, float]:
    """:func:`describe_variants` of one clip, cached beside the descriptors (JSON)."""
    
    directory = cache.cache_dir() if directory is None else Path(directory)
    version = hashlib.sha256(json.dumps([VARIANT_VERSION, DESCRIPTOR_RATE, HOP, N_FFT]).encode()).hexdigest()[:16]
    target = directory / f"{cache.file_hash(path=path)}-{version}.variants.json"
    if target.is_file():
        return json.loads(target.read_text())
    values = describe_variants(load_audio(path=path, target_rate=DESCRIPTOR_RATE), rate=DESCRIPTOR_RATE)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(values))
    temporary.replace(target)
    return values


def profile_check(values: np.ndarray, *, ratings: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """A descriptor ``(n_clips,)`` against the rated emotions ``(n_clips, 8)``: its largest |r| with them and the
    agreement of its 8 r's with the human mid-level rating's profile ``reference`` ``(8,)`` (no model)."""
    profile = np.array([soundtracks.pearson(x=values, y=ratings[:, e]) for e in range(ratings.shape[1])])
    return {"max_abs_r_with_emotions": float(np.max(np.abs(profile))),
            "agreement_with_human_profile": float(soundtracks.pearson(x=profile, y=reference))}


def choose_variants(checks: dict[str, dict[str, dict[str, float]]]) -> dict[str, str]:
    """The declared rule: per feature, the variant with the highest profile agreement among those whose largest
    |r| with the emotions is >= VARIANT_MIN_ABS_R; it replaces the current descriptor only if its agreement
    beats the current one's by >= VARIANT_MARGIN. ``checks``: feature -> variant -> :func:`profile_check`."""
    chosen = {}
    for feature, by_variant in checks.items():
        current = CURRENT_VARIANT[feature]
        usable = {name: c for name, c in by_variant.items() if c["max_abs_r_with_emotions"] >= VARIANT_MIN_ABS_R}
        best = max(usable, key=lambda n: usable[n]["agreement_with_human_profile"], default=current)
        gain = by_variant[best]["agreement_with_human_profile"] - by_variant[current]["agreement_with_human_profile"]
        chosen[feature] = best if best != current and gain >= VARIANT_MARGIN else current
    return chosen


def variant_checks(*, root: Path | None = None, directory: Path | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`profile_check` of every variant of :data:`VARIANT_NAMES` over the 360 clips (current ones included)."""
    data = soundtracks.load(root=root)
    _, current = base_clip_descriptors(root=root, directory=directory)
    extra = [variants_for(path=clip.path, directory=directory) for clip in data.clips]
    reference = soundtracks.mid_emotion_correlation(root=data.root)
    checks: dict[str, dict[str, dict[str, float]]] = {}
    for feature, variants in VARIANT_NAMES.items():
        index = labels.MID_LEVELS.index(feature)
        checks[feature] = {}
        for name in variants:
            values = current[:, index] if name == CURRENT_VARIANT[feature] else np.array([v[name] for v in extra])
            checks[feature][name] = profile_check(values, ratings=data.ratings, reference=reference[index])
    return checks


def _cache_file(*, path: Path, directory: Path) -> Path:
    version = hashlib.sha256(json.dumps([DESCRIPTOR_VERSION, DESCRIPTOR_RATE, HOP, N_FFT]).encode()).hexdigest()[:16]
    return directory / f"{cache.file_hash(path=path)}-{version}.descriptors.npy"


def descriptors_for(*, path: Path, directory: Path | None = None) -> np.ndarray:
    """The clip's descriptors ``(7,)``, from the cache if present, else computed and stored."""
    
    directory = cache.cache_dir() if directory is None else Path(directory)
    target = _cache_file(path=path, directory=directory)
    if target.is_file():
        return np.load(target)
    values = describe(load_audio(path=path, target_rate=DESCRIPTOR_RATE), rate=DESCRIPTOR_RATE)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp.npy")
    np.save(temporary, values)
    temporary.replace(target)
    return values


def describe_selected(samples: np.ndarray, *, rate: int = DESCRIPTOR_RATE) -> np.ndarray:
    """The validity descriptors (:data:`DESCRIPTOR_NAMES`) of one clip, ``(7,)`` in MID_LEVELS order:
    :func:`describe` with the :data:`SELECTED_VARIANT` columns replaced."""
    return _selected(base=describe(samples, rate=rate), variants=describe_variants(samples, rate=rate))


def _selected(*, base: np.ndarray, variants: dict[str, float]) -> np.ndarray:
    values = np.array(base, dtype=np.float64)
    for name, variant in SELECTED_VARIANT.items():
        values[labels.MID_LEVELS.index(name)] = variants[variant]
    return values


def _clips(*, clip_ids: list[str] | None, root: Path | None) -> tuple[list[str], list[Path]]:
    data = soundtracks.load(root=root)
    by_id = {clip.clip_id: clip for clip in data.clips}
    ids = list(clip_ids) if clip_ids is not None else data.ids
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ValueError(f"unknown Soundtracks clip id(s): {', '.join(unknown[:5])}")
    return ids, [by_id[i].path for i in ids]


def base_clip_descriptors(*, clip_ids: list[str] | None = None, root: Path | None = None,
                          directory: Path | None = None) -> tuple[list[str], np.ndarray]:
    """:func:`describe` (the first descriptors, :data:`BASE_DESCRIPTOR_NAMES`) of set-1 clips: ``(ids, (n, 7))``."""
    ids, paths = _clips(clip_ids=clip_ids, root=root)
    return ids, np.stack([descriptors_for(path=path, directory=directory) for path in paths])


def clip_descriptors(*, clip_ids: list[str] | None = None, root: Path | None = None,
                     directory: Path | None = None) -> tuple[list[str], np.ndarray]:
    """The validity descriptors of the Soundtracks set-1 clips ``clip_ids`` (default all 360): ``(ids, (n, 7))``."""
    ids, paths = _clips(clip_ids=clip_ids, root=root)
    return ids, np.stack([_selected(base=descriptors_for(path=path, directory=directory),
                                    variants=variants_for(path=path, directory=directory)) for path in paths])


def validity_table(mid: np.ndarray, descriptors: np.ndarray) -> dict:
    """Pearson r of each predicted mid-level feature with its descriptor.

    ``mid``: ``(n_clips, 7)`` held-out (out-of-fold) predictions; ``descriptors``: ``(n_clips, 7)``.
    Returns ``{"features": {name: {"descriptor", "r", "expected_sign", "passes"}}, "passing": int,
    "goal_r": 0.3, "num_clips": n}``; ``passes`` is ``expected_sign * r >= goal_r``.
    """
    mid = np.asarray(mid, dtype=np.float64)
    descriptors = np.asarray(descriptors, dtype=np.float64)
    if mid.shape != descriptors.shape or mid.ndim != 2 or mid.shape[1] != labels.NUM_MID_LEVELS:
        raise ValueError(f"expected two (n, 7) arrays, got {mid.shape} and {descriptors.shape}")
    rows = {}
    for column, name in enumerate(labels.MID_LEVELS):
        r = soundtracks.pearson(x=mid[:, column], y=descriptors[:, column])
        sign = EXPECTED_SIGN[name]
        rows[name] = {
            "descriptor": DESCRIPTOR_NAMES[name],
            "r": float(r),
            "expected_sign": sign,
            "passes": bool(np.isfinite(r) and sign * r >= VALIDITY_GOAL_R),
        }
    return {
        "features": rows,
        "passing": int(sum(row["passes"] for row in rows.values())),
        "goal_r": VALIDITY_GOAL_R,
        "num_clips": int(mid.shape[0]),
    }


def mid_level_validity(mid: np.ndarray, *, clip_ids: list[str], root: Path | None = None,
                       directory: Path | None = None) -> dict:
    """The validity table of out-of-fold mid-level predictions ``mid`` ``(n, 7)`` (model units or 0-1:
    Pearson r does not care), row ``k`` being Soundtracks set-1 clip ``clip_ids[k]`` (e.g. ``"001"``)."""
    ids, descriptors = clip_descriptors(clip_ids=clip_ids, root=root, directory=directory)
    return validity_table(np.asarray(mid), descriptors)


def descriptor_sanity(*, root: Path | None = None, directory: Path | None = None) -> dict[str, dict[str, float]]:
    """Does each descriptor behave like the human mid-level rating it stands for? (Independent of any model.)

    For each feature: the Pearson r of the descriptor with each of the 8 rated emotions over the 360 clips,
    and ``agreement``, the correlation of that 8-value profile with the poster's profile of the *human*
    mid-level ratings against the same emotions (``midlevel_emotion_annotation_correlation.csv``). A
    descriptor with ``agreement`` near 1 and sizeable r's measures what listeners rated; one near 0 or
    below does not, and a low validity r for its feature says little about the model.
    """
    data = soundtracks.load(root=root)
    ids, values = clip_descriptors(root=root, directory=directory)
    ratings = data.ratings
    reference = soundtracks.mid_emotion_correlation(root=data.root)
    result = {}
    for index, name in enumerate(labels.MID_LEVELS):
        profile = np.array([soundtracks.pearson(x=values[:, index], y=ratings[:, e]) for e in range(labels.NUM_EMOTIONS)])
        result[name] = {
            "max_abs_r_with_emotions": float(np.max(np.abs(profile))),
            "agreement_with_human_profile": float(soundtracks.pearson(x=profile, y=reference[index])),
        }
    return result


def oof_mid_from_cv(folder: Path) -> tuple[list[str], np.ndarray]:
    """Out-of-fold clip-level mid-level predictions of a ``mer-live-train cv`` run folder (its
    ``fold*.json`` records, each with ``test_ids`` and ``clip_mid``): ``(ids, (n, 7))``, sorted by id."""
    pairs: dict[str, list[float]] = {}
    for record_path in sorted(Path(folder).glob("fold*.json")):
        record = json.loads(record_path.read_text())
        pairs.update(zip(record["test_ids"], record["clip_mid"]))
    if not pairs:
        raise ValueError(f"{folder}: no fold*.json records with clip_mid")
    ids = sorted(pairs)
    return ids, np.array([pairs[i] for i in ids], dtype=np.float64)


def format_table(table: dict, *, title: str = "") -> str:
    """A plain-text table of :func:`validity_table`'s result."""
    lines = [title] if title else []
    lines.append(f"{'mid-level':18} {'descriptor':52} {'r':>7}  goal")
    for name, row in table["features"].items():
        mark = "yes" if row["passes"] else "no"
        lines.append(f"{name:18} {row['descriptor']:52} {row['r']:+7.3f}  {mark}")
    lines.append(f"{table['passing']} of {len(table['features'])} with r >= {table['goal_r']} in the expected direction "
                 f"({table['num_clips']} clips)")
    return "\n".join(lines)


def in_sample_mid(*, model_path: Path, clip_ids: list[str] | None = None, root: Path | None = None) -> tuple[list[str], np.ndarray]:
    """Clip-level mid-level predictions ``(n, 7)`` of a model file on the set-1 clips (mean over each
    clip's windows, v1: 10 s windows at the evaluation hop; v2: its 3 s patches at the patch hop).

    These are NOT held out when the model was trained on these clips (the shipped models are): an
    optimistic stand-in, to be labelled as such, where out-of-fold predictions are not kept.
    """
    from mer_live.features import mel
    from mer_live.model.emotion_model import EmotionModel
    from . import data

    network = EmotionModel(path=model_path)
    dataset = soundtracks.load(root=root)
    by_id = {clip.clip_id: clip for clip in dataset.clips}
    ids = list(clip_ids) if clip_ids is not None else dataset.ids
    mids = []
    for clip_id in ids:
        path = by_id[clip_id].path
        if network.pooling is None:
            windows, _ = data.clip_windows(block=cache.frames_for(path=path))
        else:
            frames = mel.analyse(samples=load_audio(path=path, target_rate=mel.SAMPLE_RATE))
            starts = mel.patch_starts(total_frames=len(frames), hop_frames=network.pooling.patch_hop_frames)
            windows = np.stack([mel.loop_pad(frames=frames[s : s + mel.PATCH_FRAMES]) for s in starts])
        mids.append(network.process(windows=windows).mid.mean(axis=0))
    network.close()
    return ids, np.stack(mids)


def main(argv: list[str] | None = None) -> int:
    """Build the descriptor cache (default), or print/write a validity table (``--model`` / ``--cv``)."""
    parser = argparse.ArgumentParser(description="Mid-level validity descriptors of the Soundtracks clips")
    parser.add_argument("--log", type=Path, help="append progress lines here")
    parser.add_argument("--limit", type=int, help="only the first N clips")
    parser.add_argument("--model", type=Path, action="append", default=[],
                        help="validity of this model file's in-sample predictions (repeatable)")
    parser.add_argument("--cv", type=Path, action="append", default=[],
                        help="validity of the out-of-fold predictions of this mer-live-train cv run folder (repeatable)")
    parser.add_argument("--out", type=Path, help="write the validity tables as JSON here")
    parser.add_argument("--variants", action="store_true",
                        help="compute the declared descriptor variants and print the model-free profile check")
    args = parser.parse_args(argv)
    handlers = [logging.FileHandler(args.log)] if args.log else [logging.StreamHandler(sys.stderr)]
    logging.basicConfig(level=logging.INFO, handlers=handlers, format="%(asctime)s %(message)s")
    if args.variants:
        checks = variant_checks()
        chosen = choose_variants(checks)
        for feature, by_variant in checks.items():
            for name, check in by_variant.items():
                mark = " <- chosen" if chosen[feature] == name else ""
                print(f"{feature:18} {name:30} max|r| {check['max_abs_r_with_emotions']:.2f} "
                      f"agreement {check['agreement_with_human_profile']:+.2f}{mark}")
        if args.out:
            args.out.write_text(json.dumps({"checks": checks, "chosen": chosen}, indent=1) + "\n")
        return 0
    if args.model or args.cv:
        tables = {}
        for path in args.model:
            ids, mid = in_sample_mid(model_path=path)
            tables[f"{path} (in-sample, not held out)"] = mid_level_validity(mid, clip_ids=ids)
        for folder in args.cv:
            ids, mid = oof_mid_from_cv(folder)
            tables[f"{folder} (out-of-fold)"] = mid_level_validity(mid, clip_ids=ids)
        for title, table in tables.items():
            print(format_table(table, title=title) + "\n")
        sanity = descriptor_sanity()
        tables["descriptor_sanity"] = sanity
        print("descriptor sanity (no model): largest |r| with the 8 rated emotions; agreement of that profile "
              "with the human mid-level ratings' profile")
        for name, row in sanity.items():
            print(f"{name:18} {row['max_abs_r_with_emotions']:5.2f} {row['agreement_with_human_profile']:+6.2f}")
        if args.out:
            args.out.write_text(json.dumps(tables, indent=1) + "\n")
        return 0
    data = soundtracks.load()
    clips = data.clips[: args.limit] if args.limit else data.clips
    started = time.perf_counter()
    for number, clip in enumerate(clips, 1):
        values = descriptors_for(path=clip.path)
        LOG.info("%d/%d %s %s (%.0f s)", number, len(clips), clip.clip_id, np.round(values, 4).tolist(),
                 time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
