"""The demo piece: synthesised here with numpy, so a machine with no sound card and no audio files can
run the whole pipeline (``mer-live --demo``). No third-party audio is involved.

Two contrasting sections of ``SECTION_SECONDS`` each, at the model rate:

1. ``bright``: C major, a moderate 112 beats per minute, consonant triads (I-IV-V-I) in the middle
   register, a plucked stepwise melody above them, a soft kick on every beat and a hi-hat between.
2. ``dark``: low and slow (60 bpm, irregular accents), C minor colour with dissonant clusters (minor
   seconds, a tritone), a tremolo (7 Hz) on detuned, beating low voices and a rumbling noise floor.

The output is deterministic (fixed seed), mono, float32, peak ``PEAK_AMPLITUDE``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import SAMPLE_RATE

SECTION_SECONDS = 20.0
FADE_SECONDS = 0.05
PEAK_AMPLITUDE = 0.5
SEED = 20190401
A4_HZ = 440.0
A4_MIDI = 69
SEMITONES = 12

BRIGHT_BPM = 112.0
DARK_BPM = 60.0
BEATS_PER_BAR = 4
TREMOLO_HZ = 7.0
DETUNE_CENTS = 14.0
CENTS_PER_SEMITONE = 100.0

# MIDI notes. Bright: C major triads (C4 E4 G4 / F3 A3 C4 / G3 B3 D4) and a melody in C5-C6.
BRIGHT_CHORDS: tuple[tuple[int, ...], ...] = ((60, 64, 67), (53, 57, 60), (55, 59, 62), (60, 64, 67))
BRIGHT_BASS: tuple[int, ...] = (48, 41, 43, 48)
BRIGHT_MELODY: tuple[int, ...] = (72, 74, 76, 79, 77, 76, 74, 72, 71, 72, 74, 76, 77, 79, 81, 79)
# Dark: low clusters over a C1/C2 drone: C-Db-G, C-Eb-F#, C-Db-Ab, B-C-Eb.
DARK_CLUSTERS: tuple[tuple[int, ...], ...] = ((36, 37, 43), (36, 39, 42), (36, 37, 44), (35, 36, 39))
DARK_DRONE: tuple[int, ...] = (24, 36)
DARK_ACCENT_BEATS: tuple[float, ...] = (0.0, 1.5, 2.25, 3.5)

C_MAJOR_PITCH_CLASSES = frozenset({0, 2, 4, 5, 7, 9, 11})
DARK_PITCH_CLASSES = frozenset(n % SEMITONES for chord in DARK_CLUSTERS for n in chord) | frozenset(
    n % SEMITONES for n in DARK_DRONE
)


@dataclass(frozen=True)
class Section:
    """A section of the demo: ``[start_s, end_s)`` and the pitch classes its notes use."""

    name: str
    start_s: float
    end_s: float
    pitch_classes: frozenset[int]
    description: str


SECTIONS: tuple[Section, ...] = (
    Section(
        name="bright",
        start_s=0.0,
        end_s=SECTION_SECONDS,
        pitch_classes=C_MAJOR_PITCH_CLASSES,
        description="consonant, C major, moderate tempo (112 bpm), middle register",
    ),
    Section(
        name="dark",
        start_s=SECTION_SECONDS,
        end_s=2 * SECTION_SECONDS,
        pitch_classes=DARK_PITCH_CLASSES,
        description="dissonant clusters, C minor colour, slow (60 bpm), low register, tremolo",
    ),
)
DURATION_SECONDS = SECTIONS[-1].end_s


def midi_to_hz(*, note: float) -> float:
    return A4_HZ * 2.0 ** ((note - A4_MIDI) / SEMITONES)


def _tone(*, frequency: float, num_samples: int, harmonics: int, rolloff: float) -> np.ndarray:
    """Additive tone ``(num_samples,)``: harmonic ``k`` has amplitude ``rolloff ** (k - 1)``."""
    t = np.arange(num_samples) / SAMPLE_RATE
    out = np.zeros(num_samples, dtype=np.float64)
    nyquist = SAMPLE_RATE / 2
    for k in range(1, harmonics + 1):
        if k * frequency >= nyquist:
            break
        out += rolloff ** (k - 1) * np.sin(2 * np.pi * k * frequency * t)
    return out


def _add(*, out: np.ndarray, start_s: float, signal: np.ndarray) -> None:
    start = int(round(start_s * SAMPLE_RATE))
    stop = min(len(out), start + len(signal))
    if start < stop:
        out[start:stop] += signal[: stop - start]


def _envelope(*, num_samples: int, attack_s: float, decay_s: float) -> np.ndarray:
    """Linear attack then exponential decay with time constant ``decay_s``."""
    t = np.arange(num_samples) / SAMPLE_RATE
    attack = np.clip(t / max(attack_s, 1.0 / SAMPLE_RATE), 0.0, 1.0)
    return attack * np.exp(-t / decay_s)


def _bright(*, rng: np.random.Generator) -> np.ndarray:
    n = int(round(SECTION_SECONDS * SAMPLE_RATE))
    out = np.zeros(n, dtype=np.float64)
    beat = 60.0 / BRIGHT_BPM
    bar = beat * BEATS_PER_BAR
    num_bars = int(np.ceil(SECTION_SECONDS / bar))
    for bar_index in range(num_bars):
        chord = BRIGHT_CHORDS[bar_index % len(BRIGHT_CHORDS)]
        bass = BRIGHT_BASS[bar_index % len(BRIGHT_BASS)]
        length = int(bar * SAMPLE_RATE)
        env = _envelope(num_samples=length, attack_s=0.02, decay_s=bar)
        for note in chord:
            tone = _tone(frequency=midi_to_hz(note=note), num_samples=length, harmonics=5, rolloff=0.5)
            _add(out=out, start_s=bar_index * bar, signal=0.12 * env * tone)
        bass_tone = _tone(frequency=midi_to_hz(note=bass), num_samples=length, harmonics=4, rolloff=0.4)
        _add(out=out, start_s=bar_index * bar, signal=0.18 * env * bass_tone)
    num_beats = int(np.ceil(SECTION_SECONDS / beat))
    kick_length = int(0.15 * SAMPLE_RATE)
    t_kick = np.arange(kick_length) / SAMPLE_RATE
    kick = np.sin(2 * np.pi * (60.0 * t_kick + 40.0 * (1 - np.exp(-t_kick / 0.03)) * 0.03)) * np.exp(-t_kick / 0.05)
    hat_length = int(0.05 * SAMPLE_RATE)
    for beat_index in range(num_beats):
        _add(out=out, start_s=beat_index * beat, signal=0.35 * kick)
        hat = rng.standard_normal(hat_length) * np.exp(-np.arange(hat_length) / (0.01 * SAMPLE_RATE))
        hat = np.diff(hat, prepend=0.0)  # crude high-pass
        _add(out=out, start_s=(beat_index + 0.5) * beat, signal=0.04 * hat)
        note = BRIGHT_MELODY[beat_index % len(BRIGHT_MELODY)]
        length = int(beat * SAMPLE_RATE)
        pluck = _envelope(num_samples=length, attack_s=0.005, decay_s=0.18)
        tone = _tone(frequency=midi_to_hz(note=note), num_samples=length, harmonics=6, rolloff=0.45)
        _add(out=out, start_s=beat_index * beat, signal=0.22 * pluck * tone)
    return out


def _dark(*, rng: np.random.Generator) -> np.ndarray:
    n = int(round(SECTION_SECONDS * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n, dtype=np.float64)
    for note in DARK_DRONE:
        out += 0.12 * _tone(frequency=midi_to_hz(note=note), num_samples=n, harmonics=8, rolloff=0.7)
    tremolo = 0.6 + 0.4 * np.sin(2 * np.pi * TREMOLO_HZ * t)
    beat = 60.0 / DARK_BPM
    bar = beat * BEATS_PER_BAR
    num_bars = int(np.ceil(SECTION_SECONDS / bar))
    detune = 2.0 ** (DETUNE_CENTS / CENTS_PER_SEMITONE / SEMITONES)
    for bar_index in range(num_bars):
        cluster = DARK_CLUSTERS[bar_index % len(DARK_CLUSTERS)]
        length = int(bar * SAMPLE_RATE)
        env = _envelope(num_samples=length, attack_s=0.4, decay_s=2.0 * bar)
        start = int(bar_index * bar * SAMPLE_RATE)
        trem = tremolo[start : start + length]
        trem = np.pad(trem, (0, length - len(trem)))
        for note in cluster:
            f = midi_to_hz(note=note)
            voice = _tone(frequency=f, num_samples=length, harmonics=10, rolloff=0.75)
            voice += _tone(frequency=f * detune, num_samples=length, harmonics=10, rolloff=0.75)
            _add(out=out, start_s=bar_index * bar, signal=0.07 * env * trem * voice)
        for accent in DARK_ACCENT_BEATS:
            hit_length = int(0.6 * SAMPLE_RATE)
            hit = _tone(frequency=midi_to_hz(note=cluster[0] - SEMITONES), num_samples=hit_length, harmonics=6, rolloff=0.8)
            hit *= _envelope(num_samples=hit_length, attack_s=0.003, decay_s=0.25)
            _add(out=out, start_s=(bar_index * BEATS_PER_BAR + accent) * beat, signal=0.25 * hit)
    rumble = np.cumsum(rng.standard_normal(n))
    rumble -= np.convolve(rumble, np.ones(2048) / 2048, mode="same")  # keep it from drifting
    out += 0.02 * rumble / max(np.max(np.abs(rumble)), 1e-9)
    return out


def synthesise() -> np.ndarray:
    """The whole demo piece, ``(DURATION_SECONDS * SAMPLE_RATE,)`` float32 at ``SAMPLE_RATE``."""
    rng = np.random.default_rng(SEED)
    parts = [_bright(rng=rng), _dark(rng=rng)]
    fade = int(FADE_SECONDS * SAMPLE_RATE)
    ramp = np.linspace(0.0, 1.0, fade)
    for part in parts:
        part[:fade] *= ramp
        part[-fade:] *= ramp[::-1]
        part *= PEAK_AMPLITUDE / max(np.max(np.abs(part)), 1e-12)
    return np.concatenate(parts).astype(np.float32)


def section_at(*, seconds: float) -> Section:
    """The section playing at ``seconds`` into the piece (the last one past the end)."""
    for section in SECTIONS:
        if seconds < section.end_s:
            return section
    return SECTIONS[-1]
