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

from mer_live.features.spectrogram import SAMPLE_RATE

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

SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True)
class Voice:
    """One synthesised instrument: mix gain, harmonic spectrum and envelope."""

    gain: float
    harmonics: int
    rolloff: float
    attack_s: float = 0.0
    decay_s: float = 0.0


# The bright section: a consonant major pad, bass, plucked melody, kick and hi-hat.
BRIGHT_CHORD_VOICE = Voice(gain=0.12, harmonics=5, rolloff=0.5, attack_s=0.02)  # decays over a bar
BRIGHT_BASS_VOICE = Voice(gain=0.18, harmonics=4, rolloff=0.4)
BRIGHT_PLUCK_VOICE = Voice(gain=0.22, harmonics=6, rolloff=0.45, attack_s=0.005, decay_s=0.18)
KICK_GAIN = 0.35
KICK_SECONDS = 0.15
KICK_HZ = 60.0
KICK_SWEEP_HZ = 40.0
KICK_SWEEP_S = 0.03
KICK_DECAY_S = 0.05
HAT_GAIN = 0.04
HAT_SECONDS = 0.05
HAT_DECAY_S = 0.01
OFFBEAT = 0.5  # the hi-hat plays between the beats
# The dark section: a low drone, detuned tremolo clusters, accented hits and a rumble.
DARK_DRONE_VOICE = Voice(gain=0.12, harmonics=8, rolloff=0.7)
DARK_CLUSTER_VOICE = Voice(gain=0.07, harmonics=10, rolloff=0.75, attack_s=0.4)  # decays over 2 bars
DARK_CLUSTER_DECAY_BARS = 2.0
DARK_HIT_VOICE = Voice(gain=0.25, harmonics=6, rolloff=0.8, attack_s=0.003, decay_s=0.25)
DARK_HIT_SECONDS = 0.6
TREMOLO_CENTRE = 0.6
TREMOLO_DEPTH = 0.4
RUMBLE_GAIN = 0.02
RUMBLE_DETREND_SAMPLES = 2048  # a moving average removed so the random walk does not drift
TINY = 1e-12  # guards divisions by a peak of zero

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
    beat = SECONDS_PER_MINUTE / BRIGHT_BPM
    bar = beat * BEATS_PER_BAR
    num_bars = int(np.ceil(SECTION_SECONDS / bar))
    for bar_index in range(num_bars):
        chord = BRIGHT_CHORDS[bar_index % len(BRIGHT_CHORDS)]
        bass = BRIGHT_BASS[bar_index % len(BRIGHT_BASS)]
        length = int(bar * SAMPLE_RATE)
        env = _envelope(num_samples=length, attack_s=BRIGHT_CHORD_VOICE.attack_s, decay_s=bar)
        for note in chord:
            tone = _tone(frequency=midi_to_hz(note=note), num_samples=length, harmonics=BRIGHT_CHORD_VOICE.harmonics,
                         rolloff=BRIGHT_CHORD_VOICE.rolloff)
            _add(out=out, start_s=bar_index * bar, signal=BRIGHT_CHORD_VOICE.gain * env * tone)
        bass_tone = _tone(frequency=midi_to_hz(note=bass), num_samples=length, harmonics=BRIGHT_BASS_VOICE.harmonics,
                          rolloff=BRIGHT_BASS_VOICE.rolloff)
        _add(out=out, start_s=bar_index * bar, signal=BRIGHT_BASS_VOICE.gain * env * bass_tone)
    num_beats = int(np.ceil(SECTION_SECONDS / beat))
    kick_length = int(KICK_SECONDS * SAMPLE_RATE)
    t_kick = np.arange(kick_length) / SAMPLE_RATE
    sweep = KICK_SWEEP_HZ * (1 - np.exp(-t_kick / KICK_SWEEP_S)) * KICK_SWEEP_S
    kick = np.sin(2 * np.pi * (KICK_HZ * t_kick + sweep)) * np.exp(-t_kick / KICK_DECAY_S)
    hat_length = int(HAT_SECONDS * SAMPLE_RATE)
    for beat_index in range(num_beats):
        _add(out=out, start_s=beat_index * beat, signal=KICK_GAIN * kick)
        hat = rng.standard_normal(hat_length) * np.exp(-np.arange(hat_length) / (HAT_DECAY_S * SAMPLE_RATE))
        hat = np.diff(hat, prepend=0.0)  # crude high-pass
        _add(out=out, start_s=(beat_index + OFFBEAT) * beat, signal=HAT_GAIN * hat)
        note = BRIGHT_MELODY[beat_index % len(BRIGHT_MELODY)]
        length = int(beat * SAMPLE_RATE)
        pluck = _envelope(num_samples=length, attack_s=BRIGHT_PLUCK_VOICE.attack_s, decay_s=BRIGHT_PLUCK_VOICE.decay_s)
        tone = _tone(frequency=midi_to_hz(note=note), num_samples=length, harmonics=BRIGHT_PLUCK_VOICE.harmonics,
                     rolloff=BRIGHT_PLUCK_VOICE.rolloff)
        _add(out=out, start_s=beat_index * beat, signal=BRIGHT_PLUCK_VOICE.gain * pluck * tone)
    return out


def _dark(*, rng: np.random.Generator) -> np.ndarray:
    n = int(round(SECTION_SECONDS * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n, dtype=np.float64)
    for note in DARK_DRONE:
        out += DARK_DRONE_VOICE.gain * _tone(frequency=midi_to_hz(note=note), num_samples=n,
                                             harmonics=DARK_DRONE_VOICE.harmonics, rolloff=DARK_DRONE_VOICE.rolloff)
    tremolo = TREMOLO_CENTRE + TREMOLO_DEPTH * np.sin(2 * np.pi * TREMOLO_HZ * t)
    beat = SECONDS_PER_MINUTE / DARK_BPM
    bar = beat * BEATS_PER_BAR
    num_bars = int(np.ceil(SECTION_SECONDS / bar))
    detune = 2.0 ** (DETUNE_CENTS / CENTS_PER_SEMITONE / SEMITONES)
    for bar_index in range(num_bars):
        cluster = DARK_CLUSTERS[bar_index % len(DARK_CLUSTERS)]
        length = int(bar * SAMPLE_RATE)
        env = _envelope(num_samples=length, attack_s=DARK_CLUSTER_VOICE.attack_s, decay_s=DARK_CLUSTER_DECAY_BARS * bar)
        start = int(bar_index * bar * SAMPLE_RATE)
        trem = tremolo[start : start + length]
        trem = np.pad(trem, (0, length - len(trem)))
        for note in cluster:
            f = midi_to_hz(note=note)
            voice = sum(_tone(frequency=pitch, num_samples=length, harmonics=DARK_CLUSTER_VOICE.harmonics,
                              rolloff=DARK_CLUSTER_VOICE.rolloff) for pitch in (f, f * detune))
            _add(out=out, start_s=bar_index * bar, signal=DARK_CLUSTER_VOICE.gain * env * trem * voice)
        for accent in DARK_ACCENT_BEATS:
            hit_length = int(DARK_HIT_SECONDS * SAMPLE_RATE)
            hit = _tone(frequency=midi_to_hz(note=cluster[0] - SEMITONES), num_samples=hit_length,
                        harmonics=DARK_HIT_VOICE.harmonics, rolloff=DARK_HIT_VOICE.rolloff)
            hit *= _envelope(num_samples=hit_length, attack_s=DARK_HIT_VOICE.attack_s, decay_s=DARK_HIT_VOICE.decay_s)
            _add(out=out, start_s=(bar_index * BEATS_PER_BAR + accent) * beat, signal=DARK_HIT_VOICE.gain * hit)
    rumble = np.cumsum(rng.standard_normal(n))
    detrend = np.ones(RUMBLE_DETREND_SAMPLES) / RUMBLE_DETREND_SAMPLES
    rumble -= np.convolve(rumble, detrend, mode="same")
    out += RUMBLE_GAIN * rumble / max(np.max(np.abs(rumble)), TINY)
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
        part *= PEAK_AMPLITUDE / max(np.max(np.abs(part)), TINY)
    return np.concatenate(parts).astype(np.float32)


def section_at(*, seconds: float) -> Section:
    """The section playing at ``seconds`` into the piece (the last one past the end)."""
    for section in SECTIONS:
        if seconds < section.end_s:
            return section
    return SECTIONS[-1]
