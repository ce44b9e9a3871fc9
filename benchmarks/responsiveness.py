"""How fast the live daemon's outputs follow the music: step response and steady-section jitter, v1 vs v2.

Test files are built from the Soundtracks set-1 clips (``$MER_DATA_DIR``), each section ``SECTION_S`` =
20 s (a clip's first 20 s, looped if it is shorter), 44.1 kHz stereo:

* ``energy``: the calmest against the most energetic clips, alternating: 341, 242, 271, 243, 272, 012
  (calm 341, 271, 272; energetic 242, 243, 012, as in issue 7);
* ``valence``: happy against sad clips, alternating. The clips are picked from the set-1 ratings by
  ``valence + happy - sad``: the three ``TARGET`` = HAPPY clips with the highest score and the three
  ``TARGET`` = SAD clips with the lowest (005, 036, 009, 031, 003, 037 with the shipped ratings; the
  ids are printed and stored in the JSON). In this set happy and sad clips differ far less in rated
  valence (about 2 points of 9) than in happy and sad, hence the score.

Each file goes through the REAL daemon once per run, as a child process with default settings except
the input, the model and the sinks: ``mer-live --input FILE --fast --rate 10 --csv OUT --model M
--no-osc --no-control -q`` (``--fast`` only changes the pacing; the readings are those of a real-time
run, because updates follow stream time). The runs (:data:`RUNS`), all in one benchmark run: v1 with the
smoothing it first shipped with (a 2 s moving average, ``--smoothing 2 --follow 0 --change 0``), v1 with the 1 s
moving average of the v2 work (``--smoothing 1 --follow 0 --change 0``), v1 with today's defaults, v2 with the 1 s
moving average, v2 with the One-Euro defaults that preceded the change points, and v2 with today's defaults. From the CSV (the sent, smoothed values):

* for every section change at time ``t``, the step of an output runs from its level before the change
  (median over the last ``STEADY_S`` = 8 s of the previous section) to its level after it (median over
  the last 8 s of the new section); ``t50`` / ``t90`` are the first stream times after ``t`` at which the
  output has covered 50 % / 90 % of that step. Steps smaller than ``MIN_STEP`` (0.05 in the 0-1 units)
  are left out (not a step: the jitter alone would cover half of it);
* the jitter of an output is its standard deviation inside the last 8 s of each section, averaged over
  the sections (as issue 7 defines it: it counts the music's own movement inside a section too, which a
  faster model follows more); ``noise`` is the update-to-update part of it, ``std(diff) / sqrt(2)``
  inside the same spans, which a slow drift does not raise.

Reported per run and output: mean t50 and t90 over the steps (and the worst), mean step size, jitter.
Run (both models in one run)::

    python benchmarks/responsiveness.py --v1 mer_live/model/assets/a2mid2e_joint.onnx \\
        --v2 mer_live/model/assets/musicnn_joint.onnx --out benchmarks/responsiveness.json

**Tuning** (``--tune``) chooses the smoothing defaults (``analysis.smoothing``, ``analysis.follow``,
``analysis.still_speed`` and the smoother's ``SPEED_TIME_CONSTANT_S``) on OTHER files, never on the
ones above: ``energy_tune`` alternates the ``TUNE_PICKS_PER_SIDE`` = 4 calmest
and 4 most energetic clips by rated energy that are in neither benchmark file (273, 154, 035, 001, 274,
241, 275, 018 with the shipped ratings), ``valence_tune`` the next 4 HAPPY and SAD clips by the score
above, ``energy_tune2`` and ``energy_tune3`` the next 4 calmest and 4 most energetic clips each (330, 127,
071, 245, 276, 244, 038, 217 and 057, 011, 277, 308, 278, 301, 279, 202). The two further energy files
were added on 2026-11-23, after the rule on the first two files had chosen a smoother that kept the
jitter within the bound there but not on the benchmark's energy file (its energetic clips move more
inside a section): one file of 8 sections was too narrow a sample of "a steady section". A throwaway
diagnostic on the benchmark's energy file had shown that a few of the grid's settings meet both goals
there; the further files follow the same rank rule as the first, not that diagnostic, and the benchmark
files run only after the choice. The daemon runs once per model and file with smoothing off (``--smoothing 0``), and every
candidate of :data:`TUNE_GRID` is replayed on its raw mid-level trace through the daemon's own
:class:`~mer_live.live.smoother.Smoother` and Joint layer, exactly as the worker does (checked: the replay of
smoothing off, and of the chosen values, equals the daemon's sent emotions to the CSV's 6 decimals).

``--pooling PATCHES:HALFLIFE`` runs either mode with a temporary copy of the v2 file that pools
differently (the pooling lives in the file's metadata, chosen by the training side). ``--tune --poolings
P:H,P:H,...`` applies the rule below to each such copy on the tuning files and picks the pooling whose
chosen smoother has the smallest delay (how the shipped pooling was chosen)::

    python benchmarks/responsiveness.py --tune --poolings 1:0,2:0.25,4:0.25,8:0.25,4:0.5,8:0.5 \
        --v1 mer_live/model/assets/a2mid2e_joint.onnx --v2 mer_live/model/assets/musicnn_joint.onnx \
        --out benchmarks/responsiveness_pooling.json

The rule, for the default model (v2), mirrors issue 7's goal with margins for files the choice has not
seen: **among the candidates whose jitter of energy and of tension on each energy tuning file
(``TUNE_ENERGY_FILES``) is at most 0.8 of v1's with the 1 s moving average it had (replayed the same way,
same file), take the one with the smallest mean of t50 + t90 over energy and tension on those files and
happy and sad on ``valence_tune`` (``TUNE_OUTPUTS``).** If no candidate (of any pooling, with
``--poolings``) is within 0.8, the bound is 1.0, the goal itself without a margin (``TUNE_JITTER_SHARES``;
this fallback was declared with the two further files, before any candidate was scored at 1.0). The pick
is adopted as the default only if it also meets the delay goal (t50 <= 2.5 s for energy and tension on
each energy tuning file; added after the three-file rule picked a smoother that misses it, see
:func:`goal_check`): otherwise the two goals conflict on the tuning files, and the defaults stay. The first rule tried, the smallest jitter among the
candidates with t50 <= 2.2 s for energy and tension, cannot be met: with smoothing off the v2 head of the time (which heard 3 s)
itself needed 3.6 s for both on ``energy_tune`` (a 3 s patch still says "energetic" until the loud part
has left it). The grid's longest resting time constant is 16 s: slower than that, a build shorter than
a section is lost.

**Round 8: change points** (declared on 2026-11-23, before any of its candidates ran on the benchmark
files). That rule's pick missed the delay goal, and no One-Euro setting meets both goals on the tuning
files. A throwaway prototype on the tuning files' raw traces only (``/tmp``, not kept) showed why: inside
a steady section v2's raw outputs wander by 0.04-0.07 (std), so a filter that opens on their speed opens
on that too, while the mean since the true change point would be well within v1's jitter. So the grid gains
a second family, :data:`CHANGE_GRID`: the smoother's change points (``--change``; ``mer_live/live/smoother.py``),
whose fast average and ratio are the smoother's constants ``FAST_TIME_CONSTANT_S`` and ``CHANGE_RATIO``.
The rule above runs unchanged over both families; then, **if its pick misses the delay goal, the defaults
become the candidate that meets the delay goal on every energy tuning file with the smallest largest jitter
relative to v1's** (:data:`RULE_WHEN_THE_GOALS_CONFLICT`: the delay goal first, then as calm as possible;
that is :func:`goal_check`'s calmest, which is at worst the current defaults). The chosen values then go
through the real daemon on the tuning files as a check, and only then do the benchmark files run. ::

    python benchmarks/responsiveness.py --tune --v1 mer_live/model/assets/a2mid2e_joint.onnx \\
        --v2 mer_live/model/assets/musicnn_joint.onnx --out benchmarks/responsiveness_tuning.json
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import bench

SECTION_S = 20.0
STEADY_S = 8.0
MIN_STEP = 0.05  # a step must stand well above the outputs' jitter (about 0.01-0.04)
RATE = 10.0
FILE_RATE = 44100
FILE_CHANNELS = 2
ENERGY_CLIPS = ("341", "242", "271", "243", "272", "012")  # calm, energetic, calm, energetic, calm, energetic
OUTPUTS = {
    "energy": ("energy", "tension", "valence"), "valence": ("valence", "happy", "sad", "energy"),
    "energy_tune": ("energy", "tension", "valence"), "valence_tune": ("valence", "happy", "sad", "energy"),
    "energy_tune2": ("energy", "tension", "valence"), "energy_tune3": ("energy", "tension", "valence"),
}
PICKS_PER_SIDE = 3
TUNE_PICKS_PER_SIDE = 4
GOAL_T50_S = 2.5
GOAL_OUTPUTS = ("energy", "tension")
RUN_TIMEOUT_S = 600.0
# (name, model, daemon options): the old smoothing as explicit options, "today's defaults" as none
RUNS = (
    ("v1 EMA 2 s", "v1", ("--smoothing", "2", "--follow", "0", "--change", "0")),
    ("v1 EMA 1 s", "v1", ("--smoothing", "1", "--follow", "0", "--change", "0")),
    ("v1", "v1", ()),
    ("v2 EMA 1 s", "v2", ("--smoothing", "1", "--follow", "0", "--change", "0")),
    ("v2 One-Euro", "v2", ("--smoothing", "16", "--follow", "1280", "--still-speed", "0.08", "--change", "0")),
    ("v2", "v2", ()),
)
BASELINE_RUN = "v1 EMA 1 s"  # "no worse than v1": v1 as it was when issue 7's goal was set
DEFAULT_RUN = "v2"
TUNE_JITTER_SHARES = (0.8, 1.0)  # the rule's bound: the first share of v1's jitter (1 s moving average) that some candidate meets
TUNE_ENERGY_FILES = ("energy_tune", "energy_tune2", "energy_tune3")  # the jitter bound holds on each of them
TUNE_JITTER_OUTPUTS = tuple(f"{name} {out}" for name in TUNE_ENERGY_FILES for out in GOAL_OUTPUTS)
TUNE_OUTPUTS = (*TUNE_JITTER_OUTPUTS, "valence_tune happy", "valence_tune sad")  # mean t50 + t90 over these
RULE_WHEN_THE_GOALS_CONFLICT = (  # round 8, declared before its results (the module docstring)
    "if the rule's pick misses the delay goal, the candidate that meets it on every energy tuning file with the "
    "smallest largest jitter over v1's")
TUNE_REPORTED = 10  # the JSON keeps this many candidates of each kind (all are evaluated)
V1_OLD_SMOOTHING = {"smoothing": 1.0, "follow": 0.0, "still_speed": 0.0, "change": 0.0}
TUNE_MODEL = "v2"
TUNE_GRID = {  # smoothing (s) x follow x still speed (0-1 units/s) x the speed's low-pass (s); no change points
    "smoothing": (0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
    "follow": (0.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0),
    "still_speed": (0.0, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15),
    "speed_time_constant_s": (0.5, 1.0, 2.0),
    "change": (0.0,),
}
CHANGE_GRID = {  # change points (round 8): the longest mean (s) x threshold (0-1 emotion units) x fast average (s) x ratio
    "smoothing": (16.0, 32.0, 60.0),
    "follow": (0.0,),
    "still_speed": (0.0,),
    "speed_time_constant_s": (2.0,),
    "change": (0.1, 0.15, 0.2, 0.25, 0.3),
    "fast_time_constant_s": (0.1, 0.25, 0.5),
    "change_ratio": (0.0, 2.0, 3.0),
}
GRIDS = (TUNE_GRID, CHANGE_GRID)
TUNE_KEYS = tuple(dict.fromkeys(key for grid in GRIDS for key in grid))  # every setting a candidate row names
REPLAY_TOLERANCE = 2e-6  # the CSV's 6 decimals


def _ranked(*, root: Path) -> dict[str, list[str]]:
    """Clip ids by rating: ``calm`` / ``energetic`` (rated energy, lowest / highest first), ``happy`` /
    ``sad`` (HAPPY / SAD target clips by ``valence + happy - sad``, highest / lowest first)."""
    from mer_live.core import labels
    from mer_live.train import soundtracks

    data = soundtracks.load(root=root)
    valence, energy, happy, sad = (labels.EMOTIONS.index(name) for name in ("valence", "energy", "happy", "sad"))
    score = {c.clip_id: float(c.ratings[valence] + c.ratings[happy] - c.ratings[sad]) for c in data.clips}
    by_energy = sorted(data.clips, key=lambda c: (float(c.ratings[energy]), c.clip_id))
    return {
        "calm": [c.clip_id for c in by_energy],
        "energetic": [c.clip_id for c in reversed(by_energy)],
        "happy": sorted((c.clip_id for c in data.clips if c.target == "HAPPY"), key=lambda i: -score[i]),
        "sad": sorted((c.clip_id for c in data.clips if c.target == "SAD"), key=lambda i: score[i]),
    }


def _alternate(*, first: list[str], second: list[str], count: int, skip: set[str] = frozenset()) -> tuple[str, ...]:
    """``count`` of ``first`` and ``count`` of ``second`` not in ``skip`` (and not both), alternating."""
    taken: set[str] = set(skip)
    picks: dict[int, list[str]] = {0: [], 1: []}
    for side, ranked in enumerate((first, second)):
        for clip_id in ranked:
            if len(picks[side]) == count:
                break
            if clip_id not in taken:
                picks[side].append(clip_id)
                taken.add(clip_id)
    return tuple(itertools.chain.from_iterable(zip(picks[0], picks[1])))


def valence_clips(*, root: Path) -> tuple[str, ...]:
    """Happy and sad clips, alternating (happy first): see the module docstring."""
    ranked = _ranked(root=root)
    return _alternate(first=ranked["happy"], second=ranked["sad"], count=PICKS_PER_SIDE)


def benchmark_files(*, root: Path) -> dict[str, tuple[str, ...]]:
    """The files the results are reported on: ``{name: clip ids}``."""
    return {"energy": ENERGY_CLIPS, "valence": valence_clips(root=root)}


def tuning_files(*, root: Path) -> dict[str, tuple[str, ...]]:
    """The files the defaults are chosen on, sharing no clip with :func:`benchmark_files`."""
    ranked = _ranked(root=root)
    seen = set(itertools.chain.from_iterable(benchmark_files(root=root).values()))
    energy = _alternate(first=ranked["calm"], second=ranked["energetic"], count=TUNE_PICKS_PER_SIDE, skip=seen)
    valence = _alternate(first=ranked["happy"], second=ranked["sad"], count=TUNE_PICKS_PER_SIDE, skip=seen | set(energy))
    files = {TUNE_ENERGY_FILES[0]: energy, "valence_tune": valence}
    taken = seen | set(energy) | set(valence)
    for name in TUNE_ENERGY_FILES[1:]:  # the next calmest and most energetic clips, for each further file
        files[name] = _alternate(first=ranked["calm"], second=ranked["energetic"], count=TUNE_PICKS_PER_SIDE, skip=taken)
        taken |= set(files[name])
    return files


def build_file(*, clip_ids: tuple[str, ...], root: Path, path: Path) -> Path:
    """Concatenate the first ``SECTION_S`` of each clip (looped if shorter) into a 44.1 kHz stereo WAV."""
    import soundfile
    import soxr

    from mer_live.train import soundtracks

    section = int(SECTION_S * FILE_RATE)
    parts = []
    for clip_id in clip_ids:
        audio, rate = soundfile.read(str(root / soundtracks.SOUNDTRACKS_DIR / soundtracks.AUDIO_DIR / f"{clip_id}.mp3"),
                                     dtype="float32", always_2d=True)
        if rate != FILE_RATE:
            audio = soxr.resample(audio, rate, FILE_RATE).astype(np.float32)
        if audio.shape[1] == 1:
            audio = np.repeat(audio, FILE_CHANNELS, axis=1)
        parts.append(audio[np.arange(section) % len(audio), :FILE_CHANNELS])
    soundfile.write(str(path), np.concatenate(parts), FILE_RATE, subtype="FLOAT")
    return path


@dataclass
class Trace:
    """One daemon run's CSV: stream times ``(n,)``, every emotion and mid-level column ``(n,)`` (sent 0-1
    units), and whether the silence gate was open ``(n,)``, for the rows with values."""

    times: np.ndarray
    values: dict[str, np.ndarray]
    gate_open: np.ndarray


def run_daemon(*, input_path: Path, model: Path, csv_path: Path, extra: tuple[str, ...] = (), rate: float = RATE) -> Trace:
    """The real daemon over ``input_path`` at ``rate`` updates/s (``extra``: more options, e.g. ``--smoothing 1``)."""
    from mer_live.core import labels, reading

    command = [
        sys.executable, "-m", "mer_live", "--input", str(input_path), "--fast", "--rate", f"{rate:g}",
        "--csv", str(csv_path), "--model", str(model), "--no-osc", "--no-control", "-q", *extra,
    ]
    csv_path.unlink(missing_ok=True)  # the CSV sink appends: start from an empty file
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"daemon failed ({done.returncode}): {done.stderr[-2000:]}")
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["valence"] != ""]
    return Trace(
        times=np.array([float(row["stream_time_s"]) for row in rows]),
        values={name: np.array([float(row[name]) for row in rows]) for name in (*labels.EMOTIONS, *labels.MID_LEVELS)},
        gate_open=np.array([row["state"] != reading.STATE_SILENT for row in rows]),
    )


def step_metrics(*, times: np.ndarray, values: np.ndarray, sections: int) -> dict:
    """Step response (t50, t90 per section change) and steady-section jitter of one output trace."""
    def steady(index: int) -> np.ndarray:
        end = (index + 1) * SECTION_S
        return values[(times > end - STEADY_S) & (times <= end)]

    levels = [float(np.median(steady(k))) for k in range(sections)]
    jitter = float(np.mean([np.std(steady(k)) for k in range(sections)]))
    noise = float(np.mean([np.std(np.diff(steady(k))) / np.sqrt(2.0) for k in range(sections)]))
    steps = []
    for k in range(1, sections):
        start, before, after = k * SECTION_S, levels[k - 1], levels[k]
        size = after - before
        record = {"at_s": start, "from": before, "to": after, "size": size}
        if abs(size) >= MIN_STEP:
            within = (times > start) & (times <= start + SECTION_S)
            progress = (values[within] - before) / size
            for fraction, key in ((0.5, "t50_s"), (0.9, "t90_s")):
                reached = np.flatnonzero(progress >= fraction)
                record[key] = float(times[within][reached[0]] - start) if len(reached) else None
        steps.append(record)
    measured = [s for s in steps if "t50_s" in s]

    def summary(key: str, reducer) -> float | None:
        values_ = [s[key] for s in measured if s.get(key) is not None]
        return float(reducer(values_)) if values_ and len(values_) == len(measured) else None

    return {
        "levels": levels,
        "steps": steps,
        "steps_measured": len(measured),
        "mean_abs_step": float(np.mean([abs(s["size"]) for s in steps])),
        "t50_mean_s": summary("t50_s", np.mean),
        "t50_max_s": summary("t50_s", np.max),
        "t90_mean_s": summary("t90_s", np.mean),
        "t90_max_s": summary("t90_s", np.max),
        "jitter": jitter,
        "noise": noise,
    }




class _Recorder:
    """A sink keeping each update's stream time, unclipped sent emotions ``(8,)`` and gate state."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, np.ndarray, bool]] = []

    def process(self, *, reading) -> None:
        from mer_live.core.reading import STATE_SILENT

        if reading.is_update and reading.emotion_unclipped is not None:
            self.rows.append((reading.stream_time_s, np.array(reading.emotion_unclipped), reading.state != STATE_SILENT))

    def close(self) -> None:
        pass


@dataclass
class RawTrace:
    """The raw model output of a run with smoothing off: stream times ``(n,)``, mid-level values ``(n, 7)``
    in model units (unclipped), whether the silence gate was open ``(n,)``."""

    times: np.ndarray
    mid: np.ndarray
    gate_open: np.ndarray


def raw_trace(*, input_path: Path, model: Path, weight: np.ndarray, bias: np.ndarray) -> RawTrace:
    """The daemon's worker (in this process: the CSV clips the mid-level values to 0-1) over ``input_path``
    with smoothing off, as ``mer-live --input FILE --fast --rate 10 --smoothing 0`` runs it. The
    mid-level values are solved from the unclipped emotions through the Joint layer (``weight`` ``(8, 7)``
    has full column rank), exactly up to float rounding."""
    from mer_live.core import labels
    from mer_live.model.emotion_model import EmotionModel
    from mer_live.live.source import FileSource
    from mer_live.live.worker import Worker

    loaded = EmotionModel(path=model)
    source = FileSource(path=input_path, fast=True)
    recorder = _Recorder()
    worker = Worker(source=source, model=loaded, sinks=[recorder], rate=RATE, smoothing_s=0.0, follow=0.0)
    try:
        source.start()
        worker.run()
    finally:
        source.close()
        worker.close()
        loaded.close()
    if worker.error is not None:
        raise RuntimeError(worker.error)
    rows = recorder.rows
    if not rows:
        raise RuntimeError(f"no readings from {input_path}")
    emotion = labels.EMOTION_MODEL_MIN + labels.EMOTION_MODEL_SPAN * np.stack([row[1] for row in rows])
    mid = np.linalg.lstsq(np.asarray(weight, dtype=np.float64), (emotion - bias).T, rcond=None)[0].T
    return RawTrace(times=np.array([row[0] for row in rows]), mid=mid, gate_open=np.array([row[2] for row in rows]))


def replay(trace: RawTrace, *, weight: np.ndarray, bias: np.ndarray, smoothing: float, follow: float,
           still_speed: float, speed_time_constant_s: float, change: float, fast_time_constant_s: float,
           change_ratio: float) -> dict[str, np.ndarray]:
    """The sent emotions ``{name: (n,)}`` that the worker gives with these smoothing settings: its
    :class:`~mer_live.live.smoother.Smoother` on the raw mid-level values (model units) of ``trace``, then the
    Joint layer (``weight`` ``(8, 7)``, ``bias`` ``(8,)``), as in :class:`~mer_live.live.worker.Worker`
    (:func:`_full` gives the settings the smoother's constants where they leave them out)."""
    from mer_live.core import labels
    from mer_live.live.smoother import Smoother

    smoother = Smoother(size=labels.NUM_MID_LEVELS, time_constant_s=smoothing, follow=follow, still_speed=still_speed,
                        speed_scale=labels.MID_MODEL_SPAN, speed_time_constant_s=speed_time_constant_s,
                        change_threshold=change, change_basis=np.asarray(weight, dtype=np.float64) / labels.EMOTION_MODEL_SPAN,
                        fast_time_constant_s=fast_time_constant_s, change_ratio=change_ratio)
    smoothed = np.empty_like(trace.mid)
    before = 0.0
    for index, (at, row, gate) in enumerate(zip(trace.times, trace.mid, trace.gate_open)):
        smoothed[index] = smoother.process(values=row, dt=at - before, gate_open=bool(gate))
        before = at
    emotion = labels.emotion_to_unit(model_values=smoothed @ np.asarray(weight, dtype=np.float64).T + bias)
    return {name: np.clip(emotion[:, k], 0.0, 1.0) for k, name in enumerate(labels.EMOTIONS)}


def replay_error(trace: RawTrace, daemon: Trace, *, weight: np.ndarray, bias: np.ndarray, settings: dict) -> float:
    """Largest difference between the real daemon's sent emotions (``daemon``, same settings) and the replay."""
    from mer_live.core import labels

    if len(daemon.times) != len(trace.times) or np.max(np.abs(daemon.times - trace.times)) > 1e-3:
        return float("inf")
    replayed = replay(trace, weight=weight, bias=bias, **_full(settings))
    return float(max(np.max(np.abs(replayed[name] - daemon.values[name])) for name in labels.EMOTIONS))


def _fmt(value: float | None, spec: str = "6.2f") -> str:
    return format(value, spec) if value is not None else "   n/a"


def _cell(metrics: dict, *, sections: int) -> str:
    steps = "" if metrics["steps_measured"] == sections - 1 else f" ({metrics['steps_measured']} of {sections - 1} steps)"
    return (f"{_fmt(metrics['t50_mean_s'], '.1f').strip()} / {_fmt(metrics['t90_mean_s'], '.1f').strip()}{steps}, "
            f"{metrics['jitter']:.3f}")


def markdown(report: dict) -> str:
    """The README's table of a report: per file, output and run, t50 / t90 (mean over steps, s), jitter."""
    runs = list(report["runs"])
    lines = ["| file | output | " + " | ".join(runs) + " |", "|---|---|" + "---|" * len(runs)]
    for name, spec in report["files"].items():
        for out in OUTPUTS[name]:
            cells = [_cell(report["results"][run][name]["outputs"][out], sections=spec["sections"]) for run in runs]
            lines.append(f"| {name} | {out} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _print_table(*, report: dict) -> None:
    print(f"{'file':12} {'output':8} {'run':11} {'t50 mean':>9} {'t50 max':>8} {'t90 mean':>9} {'t90 max':>8} "
          f"{'|step|':>7} {'jitter':>7} {'noise':>7}")
    for name in report["files"]:
        for out in OUTPUTS[name]:
            for run in report["results"]:
                m = report["results"][run][name]["outputs"][out]
                print(f"{name:12} {out:8} {run:11} {_fmt(m['t50_mean_s'], '9.2f')} {_fmt(m['t50_max_s'], '8.2f')} "
                      f"{_fmt(m['t90_mean_s'], '9.2f')} {_fmt(m['t90_max_s'], '8.2f')} {m['mean_abs_step']:7.3f} "
                      f"{m['jitter']:7.4f} {m['noise']:7.4f}")


def _build(*, files: dict[str, tuple[str, ...]], root: Path, folder: Path, report: dict) -> dict[str, Path]:
    paths = {}
    for name, clips in files.items():
        paths[name] = build_file(clip_ids=clips, root=root, path=folder / f"responsiveness_{name}.wav")
        report["files"][name] = {"clips": list(clips), "sections": len(clips)}
    print("files: " + "; ".join(f"{name} = clips {', '.join(clips)}" for name, clips in files.items()))
    return paths


def benchmark(*, models: dict[str, Path], root: Path, folder: Path, rate: float = RATE) -> dict:
    """Every run of :data:`RUNS` on the benchmark files, through the real daemon at ``rate`` updates/s; the
    goal check (issue 7's is at :data:`RATE`)."""
    report: dict = {**bench.report(), "rate_hz": rate,
                    "section_s": SECTION_S, "steady_s": STEADY_S, "min_step": MIN_STEP,
                    "models": {k: str(v) for k, v in models.items()},
                    "runs": {run: {"model": model, "options": list(extra)} for run, model, extra in RUNS},
                    "files": {}, "results": {}}
    paths = _build(files=benchmark_files(root=root), root=root, folder=folder, report=report)
    for name, path in paths.items():
        sections = report["files"][name]["sections"]
        for run, model, extra in RUNS:
            started = time.perf_counter()
            trace = run_daemon(input_path=path, model=models[model], csv_path=folder / f"{name}_{run.replace(' ', '_')}.csv",
                               extra=extra, rate=rate)
            report["results"].setdefault(run, {})[name] = {
                "run_s": time.perf_counter() - started,
                "outputs": {out: step_metrics(times=trace.times, values=trace.values[out], sections=sections)
                            for out in OUTPUTS[name]},
            }
    _print_table(report=report)
    goal = {}
    for out in GOAL_OUTPUTS:
        new, old, baseline = (report["results"][run]["energy"]["outputs"][out] for run in (DEFAULT_RUN, "v2 EMA 1 s", BASELINE_RUN))
        v1_new = report["results"]["v1"]["energy"]["outputs"][out]
        common_new, common_old, shared = common_t50(new, old)
        goal[out] = {
            "t50_mean_s": new["t50_mean_s"], "t50_before_s": old["t50_mean_s"],
            "t50_common_steps_s": common_new, "t50_before_common_steps_s": common_old, "common_steps_at_s": shared,
            "t50_within_goal": new["t50_mean_s"] is not None and new["t50_mean_s"] <= GOAL_T50_S,
            "jitter_over_v1_ema1": new["jitter"] / baseline["jitter"],
            "jitter_over_v1_new": new["jitter"] / v1_new["jitter"],
            "jitter_before_over_v1_ema1": old["jitter"] / baseline["jitter"],
        }
        g = goal[out]
        print(f"goal {out}: v2 t50 {_fmt(g['t50_mean_s'], '.2f')} s (was {_fmt(g['t50_before_s'], '.2f')}; on the steps both "
              f"measured, {_fmt(g['t50_common_steps_s'], '.2f')} against {_fmt(g['t50_before_common_steps_s'], '.2f')}; <= {GOAL_T50_S} s: "
              f"{g['t50_within_goal']}), jitter v2 / v1 (1 s EMA) {g['jitter_over_v1_ema1']:.2f} "
              f"(was {g['jitter_before_over_v1_ema1']:.2f}), v2 / v1 (same defaults) {g['jitter_over_v1_new']:.2f}")
    report["goal"] = goal
    return report


def common_t50(new: dict, old: dict) -> tuple[float | None, float | None, list[float]]:
    """Mean t50 of two runs' :func:`step_metrics` over the steps that both measured (a step under
    ``MIN_STEP`` in one run is left out of its mean, so the two means may cover different steps)."""
    measured = [{s["at_s"]: s["t50_s"] for s in m["steps"] if s.get("t50_s") is not None} for m in (new, old)]
    shared = sorted(set(measured[0]) & set(measured[1]))
    if not shared:
        return None, None, []
    return (float(np.mean([measured[0][at] for at in shared])), float(np.mean([measured[1][at] for at in shared])), shared)


def _joint(*, model: Path) -> tuple[np.ndarray, np.ndarray]:
    from mer_live.model.emotion_model import EmotionModel

    loaded = EmotionModel(path=model)
    try:
        return np.asarray(loaded.weight, dtype=np.float64), np.asarray(loaded.bias, dtype=np.float64)
    finally:
        loaded.close()


SETTING_KEYS = ("smoothing", "follow", "still_speed", "change")  # the daemon's settings among TUNE_KEYS
CODE_CONSTANTS = ("speed_time_constant_s", "fast_time_constant_s", "change_ratio")  # the smoother's, among TUNE_KEYS


def _options(settings: dict) -> tuple[str, ...]:
    return tuple(itertools.chain.from_iterable((f"--{key.replace('_', '-')}", f"{settings[key]:g}") for key in SETTING_KEYS))


def tune(*, models: dict[str, Path], root: Path, folder: Path) -> dict:
    """The tuning rule of the module docstring on :func:`tuning_files`: every candidate's numbers, the
    choice, and the real daemon with the choice (and v1's old 1 s moving average) on the same files."""

    report: dict = {**bench.report(), "rate_hz": RATE, "rule": {
        "model": TUNE_MODEL, "jitter_outputs": list(TUNE_JITTER_OUTPUTS),
        "jitter_at_most": f"the first of {TUNE_JITTER_SHARES} x v1 with {V1_OLD_SMOOTHING} that a candidate meets",
        "minimise": "mean t50 + t90",
        "of": list(TUNE_OUTPUTS), "then": RULE_WHEN_THE_GOALS_CONFLICT}, "grid": {"one_euro": TUNE_GRID, "change_points": CHANGE_GRID}, "models": {k: str(v) for k, v in models.items()}, "files": {},
        "replay_error": {}}
    paths = _build(files=tuning_files(root=root), root=root, folder=folder, report=report)
    off = {"smoothing": 0.0, "follow": 0.0, "still_speed": 0.0, "change": 0.0}
    traces, joints = {}, {}
    for label, model in models.items():
        joints[label] = weight, bias = _joint(model=model)
        for name, path in paths.items():
            traces[label, name] = raw_trace(input_path=path, model=model, weight=weight, bias=bias)
            daemon = run_daemon(input_path=path, model=model, csv_path=folder / f"{name}_{label}_raw.csv", extra=_options(off))
            _check_replay(trace=traces[label, name], daemon=daemon, joint=joints[label], settings=off,
                          key=f"{label} {name} smoothing off", report=report)

    def evaluate(label: str, settings: dict) -> dict:
        return _evaluate({name: traces[label, name] for name in paths}, joint=joints[label], settings=settings,
                         files=report["files"])

    report["smoothing_off"] = unsmoothed = evaluate(TUNE_MODEL, _full(off))
    report["v1_old"] = v1_old = evaluate("v1", _full(V1_OLD_SMOOTHING))
    rows = _grid_rows({name: traces[TUNE_MODEL, name] for name in paths}, joint=joints[TUNE_MODEL], files=report["files"])
    report["jitter_share"], limits = _jitter_limits(v1_old, rows=[rows])
    report["jitter_limits"] = limits
    report["rule_pick"] = pick = choose(rows=rows, limits=limits)
    report["goals_on_the_tuning_files"] = goals = goal_check(rows=rows, chosen=pick, v1_row=v1_old)
    print(f"issue 7's goals on the tuning files: {goals['meeting_the_delay_goal']} of {len(rows)} candidates meet the delay "
          f"goal, {goals['meeting_both_goals']} meet both; the rule's pick meets the delay goal: "
          f"{goals['chosen_meets_the_delay_goal']}")
    report["chosen"] = chosen = adopted(pick=pick, goals=goals)
    if chosen is not pick:
        print(f"the goals conflict: {RULE_WHEN_THE_GOALS_CONFLICT}")
    qualified = [row for row in rows if _within(row, limits=limits)]
    report["candidates"] = {"evaluated": len(rows), "within_the_jitter_limits": len(qualified),
                            f"quickest_{TUNE_REPORTED}_within": sorted(qualified, key=_delay)[:TUNE_REPORTED],
                            f"calmest_{TUNE_REPORTED}_of_all": sorted(rows, key=_calm)[:TUNE_REPORTED]}
    plain = [row for row in rows if row["still_speed"] == 0.0 and row["follow"] > 0.0]  # One-Euro without the dead band
    report["candidates"]["plain_one_euro"] = {"evaluated": len(plain), "within_the_jitter_limits": sum(_within(row, limits=limits) for row in plain),
                                              "calmest": min(plain, key=_calm) if plain else None}
    if plain:
        calmest = report["candidates"]["plain_one_euro"]["calmest"]
        print(f"without the dead band (still_speed 0): {report['candidates']['plain_one_euro']['within_the_jitter_limits']} of "
              f"{len(plain)} within the jitter limits; the calmest: " + ", ".join(
                  f"{out} jitter {calmest[out]['jitter']:.4f}" for out in TUNE_JITTER_OUTPUTS))
    print("jitter limits: " + ", ".join(f"{key} {limit:.4f}" for key, limit in limits.items()))
    print("chosen for " + TUNE_MODEL + ": " + ", ".join(f"{key} {chosen[key]:g}" for key in TUNE_KEYS))
    for label, row in ((f"{TUNE_MODEL} off", unsmoothed), ("v1 EMA 1 s", v1_old), (f"{TUNE_MODEL} chosen", chosen)):
        for key, m in row.items():
            if key not in TUNE_KEYS:
                print(f"  {label:13} {key:22} t50 {_fmt(m['t50_mean_s'], '.2f')} s, t90 {_fmt(m['t90_mean_s'], '.2f')} s, "
                      f"jitter {m['jitter']:.4f}")
    check = {}
    differing = {key: chosen[key] for key, code in _full({}).items() if key in CODE_CONSTANTS and chosen[key] != code}
    if differing:
        print(f"the chosen {differing} are not the smoother's constants: set them, then run --tune again")
    else:  # the daemon with the chosen settings, both models; v1 with the 1 s moving average it had
        runs = (("v1 EMA 1 s", "v1", _options(V1_OLD_SMOOTHING)), ("v1 chosen", "v1", _options(chosen)),
                ("v2 chosen", "v2", _options(chosen)))
        for run, label, options in runs:
            for name, path in paths.items():
                daemon = run_daemon(input_path=path, model=models[label], csv_path=folder / f"{name}_{run.replace(' ', '_')}.csv",
                                    extra=options)
                settings = V1_OLD_SMOOTHING if run == "v1 EMA 1 s" else {key: chosen[key] for key in SETTING_KEYS}
                _check_replay(trace=traces[label, name], daemon=daemon, joint=joints[label], settings=settings,
                              key=f"{run} {name}", report=report)
                sections = report["files"][name]["sections"]
                check.setdefault(run, {})[name] = {"outputs": {
                    out: step_metrics(times=daemon.times, values=daemon.values[out], sections=sections) for out in OUTPUTS[name]}}
        _print_table(report={"files": report["files"], "results": check})
    report["daemon_with_chosen"] = check
    return report


def _evaluate(traces: dict[str, RawTrace], *, joint: tuple[np.ndarray, np.ndarray], settings: dict, files: dict) -> dict:
    """One row of the tuning: ``settings`` replayed on the raw trace of each file, its step metrics per output."""
    row = dict(settings)
    for name, trace in traces.items():
        sent = replay(trace, weight=joint[0], bias=joint[1], **settings)
        for out in OUTPUTS[name]:
            m = step_metrics(times=trace.times, values=sent[out], sections=files[name]["sections"])
            row[f"{name} {out}"] = {k: m[k] for k in ("t50_mean_s", "t90_mean_s", "jitter", "noise", "steps_measured")}
    return row


def _grid_rows(traces: dict[str, RawTrace], *, joint: tuple[np.ndarray, np.ndarray], files: dict) -> list[dict]:
    """:func:`_evaluate` for every candidate of :data:`GRIDS` (a key a grid leaves out: the smoother's constant)."""
    return [_evaluate(traces, joint=joint, settings=_full(dict(zip(grid, values))), files=files)
            for grid in GRIDS for values in itertools.product(*grid.values())]


def _full(settings: dict) -> dict:
    """``settings`` with every key of :data:`TUNE_KEYS`: the smoother's constants where it has none."""
    from mer_live.live import smoother

    constants = {"speed_time_constant_s": smoother.SPEED_TIME_CONSTANT_S, "fast_time_constant_s": smoother.FAST_TIME_CONSTANT_S,
                 "change_ratio": smoother.CHANGE_RATIO, "change": 0.0}
    return {key: settings.get(key, constants.get(key)) for key in TUNE_KEYS}


def _jitter_limits(v1_row: dict, *, rows: list[list[dict]]) -> tuple[float, dict[str, float]]:
    """The rule's bound per goal output and energy tuning file, ``(share, limits)``: the first share of
    :data:`TUNE_JITTER_SHARES` of v1's jitter in ``v1_row`` that some row of some list of ``rows`` meets
    (the last share if none does)."""
    for share in TUNE_JITTER_SHARES:
        limits = {out: share * v1_row[out]["jitter"] for out in TUNE_JITTER_OUTPUTS}
        if any(_within(row, limits=limits) for candidates in rows for row in candidates):
            break
    return share, limits


def tune_poolings(*, models: dict[str, Path], root: Path, folder: Path, poolings: list[tuple[int, float]]) -> dict:
    """The tuning rule of the module docstring for each pooling of ``poolings`` (a temporary copy of v2's
    file per pooling, its raw trace from the daemon's worker): per pooling, smoothing off and the rule's
    smoother, on the tuning files."""
    report: dict = {**bench.report(), "rate_hz": RATE, "grid": TUNE_GRID,
                    "change_grid": CHANGE_GRID, "models": {k: str(v) for k, v in models.items()}, "files": {}, "poolings": {}}
    paths = _build(files=tuning_files(root=root), root=root, folder=folder, report=report)
    v1_joint = _joint(model=models["v1"])
    v1_traces = {name: raw_trace(input_path=path, model=models["v1"], weight=v1_joint[0], bias=v1_joint[1])
                 for name, path in paths.items()}
    v1_old = _evaluate(v1_traces, joint=v1_joint, settings=_full(V1_OLD_SMOOTHING),
                       files=report["files"])
    off = _full({"smoothing": 0.0, "follow": 0.0, "still_speed": 0.0})
    grids, unsmoothed = {}, {}
    for patches, halflife in poolings:
        model = with_pooling(model=models["v2"], patches=patches, halflife_s=halflife, folder=folder)
        joint = _joint(model=model)
        traces = {name: raw_trace(input_path=path, model=model, weight=joint[0], bias=joint[1]) for name, path in paths.items()}
        grids[patches, halflife] = _grid_rows(traces, joint=joint, files=report["files"])
        unsmoothed[patches, halflife] = _evaluate(traces, joint=joint, settings=off, files=report["files"])
    report["jitter_share"], limits = _jitter_limits(v1_old, rows=list(grids.values()))
    report["jitter_limits"] = limits
    print(f"jitter bound: {report['jitter_share']:g} x v1's")
    for (patches, halflife), rows in grids.items():
        within = sum(_within(row, limits=limits) for row in rows)
        closest = min(rows, key=lambda row: _over_limits(row, limits=limits))
        entry = {"smoothing_off": unsmoothed[patches, halflife],
                 "within_the_jitter_limits": within, "closest_to_the_limits": closest,
                 "closest_jitter_over_limit": _over_limits(closest, limits=limits)}
        report["poolings"][f"{patches}:{halflife:g}"] = entry
        if not within:
            print(f"pooling {patches}:{halflife:g}: no candidate within the jitter limits; the closest, "
                  + ", ".join(f"{key} {closest[key]:g}" for key in TUNE_KEYS)
                  + f", reaches {entry['closest_jitter_over_limit']:.2f} x a limit", flush=True)
            continue
        entry["chosen"] = chosen = choose(rows=rows, limits=limits)
        entry["delay_s"] = _delay(chosen)
        cells = {label: ", ".join(f"{out} t50 {_fmt(row[out]['t50_mean_s'], '.2f')} s jitter {row[out]['jitter']:.4f}"
                                  for out in TUNE_JITTER_OUTPUTS)
                 for label, row in (("off", entry["smoothing_off"]), ("chosen", chosen))}
        print(f"pooling {patches}:{halflife:g}: delay {entry['delay_s']:.2f} s with "
              + ", ".join(f"{key} {chosen[key]:g}" for key in TUNE_KEYS) + f"; off: {cells['off']}; chosen: {cells['chosen']}",
              flush=True)
    feasible = [key for key, entry in report["poolings"].items() if "chosen" in entry]
    report["chosen_pooling"] = min(feasible, key=lambda key: report["poolings"][key]["delay_s"]) if feasible else None
    print(f"the rule's pooling: {report['chosen_pooling'] or 'none (no pooling has a candidate within the limits)'}")
    return report


def _check_replay(*, trace: RawTrace, daemon: Trace, joint: tuple[np.ndarray, np.ndarray], settings: dict, key: str,
                  report: dict) -> None:
    weight, bias = joint
    error = replay_error(trace, daemon, weight=weight, bias=bias, settings=settings)
    report["replay_error"][key] = error
    if error > REPLAY_TOLERANCE:
        raise RuntimeError(f"the replay ({key}) is off the daemon by {error:.2g}: it no longer matches the worker")


def _delay(row: dict) -> float:
    """Mean t50 + t90 over :data:`TUNE_OUTPUTS` (inf if a step never got there)."""
    values = [row[out][key] for out in TUNE_OUTPUTS for key in ("t50_mean_s", "t90_mean_s")]
    return float("inf") if any(v is None for v in values) else float(np.mean(values)) * 2.0


def _calm(row: dict) -> float:
    return float(np.mean([row[out]["jitter"] for out in TUNE_JITTER_OUTPUTS]))


def _meets_delay_goal(row: dict) -> bool:
    """t50 <= GOAL_T50_S for energy and tension on every energy tuning file."""
    return all(row[out]["t50_mean_s"] is not None and row[out]["t50_mean_s"] <= GOAL_T50_S for out in TUNE_JITTER_OUTPUTS)


def goal_check(*, rows: list[dict], chosen: dict, v1_row: dict) -> dict:
    """Issue 7's two goals on the tuning files, per energy tuning file: t50 <= GOAL_T50_S for energy and
    tension, and their jitter no worse than v1's (1 s moving average, ``v1_row``). Whether the rule's pick
    ``chosen`` meets the delay goal (it is adopted only then), how many of ``rows`` meet the delay goal and
    how many both, and the calmest of those that meet the delay goal with its largest jitter over v1's."""
    goal = {out: v1_row[out]["jitter"] for out in TUNE_JITTER_OUTPUTS}
    quick = [row for row in rows if _meets_delay_goal(row)]
    calmest = min(quick, key=lambda row: _over_limits(row, limits=goal)) if quick else None
    return {"chosen_meets_the_delay_goal": _meets_delay_goal(chosen), "meeting_the_delay_goal": len(quick),
            "meeting_both_goals": sum(_over_limits(row, limits=goal) <= 1.0 for row in quick),
            "calmest_meeting_the_delay_goal": calmest,
            "its_jitter_over_v1": _over_limits(calmest, limits=goal) if calmest else None}


def adopted(*, pick: dict, goals: dict) -> dict:
    """The defaults: the rule's ``pick`` if it meets the delay goal (``goals``: :func:`goal_check` of it), else
    (round 8, :data:`RULE_WHEN_THE_GOALS_CONFLICT`) the calmest candidate that meets the delay goal, if any
    (else the pick, which is then not adopted: its row says it misses the goal)."""
    if goals["chosen_meets_the_delay_goal"] or goals["calmest_meeting_the_delay_goal"] is None:
        return pick
    return goals["calmest_meeting_the_delay_goal"]


def _over_limits(row: dict, *, limits: dict[str, float]) -> float:
    """The row's largest jitter relative to its limit (at most 1: within every limit)."""
    return max(row[out]["jitter"] / limit for out, limit in limits.items())


def _within(row: dict, *, limits: dict[str, float]) -> bool:
    return _over_limits(row, limits=limits) <= 1.0


def choose(*, rows: list[dict], limits: dict[str, float]) -> dict:
    """The tuning rule: the smallest :func:`_delay` among the rows whose jitter is within ``limits``."""
    qualified = [row for row in rows if _within(row, limits=limits)]
    if not qualified:
        raise RuntimeError(f"no candidate's jitter is within {limits}")
    return min(qualified, key=_delay)


def with_pooling(*, model: Path, patches: int, halflife_s: float, folder: Path) -> Path:
    """A copy of the v2 ``model`` in ``folder`` whose ``mer_live.pooling`` metadata pools ``patches``
    patches with half-life ``halflife_s`` (0: equal weights), the patch hop unchanged (an experiment:
    never ship such a copy, the training side writes the pooling it chose)."""
    import onnx

    from mer_live.model.emotion_model import META_POOLING
    from mer_live.model.pooling import Pooling

    proto = onnx.load(str(model))
    entry = next(p for p in proto.metadata_props if p.key == META_POOLING)
    entry.value = Pooling(patch_hop_frames=Pooling.from_json(entry.value).patch_hop_frames, patches=patches,
                          halflife_s=halflife_s or None).to_json()
    path = folder / f"v2_pooling_{patches}_{halflife_s:g}.onnx"
    onnx.save(proto, str(path))
    return path


def pooling_arg(text: str) -> tuple[int, float]:
    """``PATCHES:HALFLIFE`` (``8:0.25``; ``1`` or ``1:0``: no half-life) as ``(patches, halflife_s)``."""
    patches, _, halflife = text.partition(":")
    return int(patches), float(halflife or 0)


def main(argv: list[str] | None = None) -> int:
    from mer_live.train import soundtracks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v1", type=Path, help="the v1 model file")
    parser.add_argument("--v2", type=Path, help="the v2 model file")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--keep", type=Path, help="keep the test files and CSVs in this folder")
    parser.add_argument("--markdown", type=Path, help="render the table of an existing --out JSON as markdown and exit")
    parser.add_argument("--tune", action="store_true", help="choose the smoothing defaults on the tuning files instead")
    parser.add_argument("--rate", type=float, default=RATE, metavar="HZ",
                        help=f"the daemon's updates per second for the benchmark (default {RATE:g}, issue 7's; --tune always uses it)")
    parser.add_argument("--pooling", metavar="PATCHES:HALFLIFE",
                        help="run v2 with this pooling instead of its own (a temporary copy of the file, e.g. 1:0 or 8:0.25)")
    parser.add_argument("--poolings", metavar="P:H,P:H,...",
                        help="with --tune: apply the rule to each of these poolings of v2's file instead (temporary "
                             "copies), and pick the pooling with the smallest delay")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    if args.v1 is None or args.v2 is None:
        parser.error("--v1 and --v2 are needed")
    if args.poolings and (not args.tune or args.pooling):
        parser.error("--poolings goes with --tune and without --pooling")
    if args.tune and args.rate != RATE:
        parser.error(f"--tune chooses the defaults at {RATE:g} updates/s; --rate goes with the benchmark")
    root = soundtracks.data_dir()
    models = {"v1": args.v1, "v2": args.v2}
    with tempfile.TemporaryDirectory() as temp:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.pooling:
            patches, halflife = pooling_arg(args.pooling)
            models["v2"] = with_pooling(model=args.v2, patches=patches, halflife_s=halflife, folder=folder)
        if args.poolings:
            poolings = [pooling_arg(item) for item in args.poolings.split(",")]
            report = tune_poolings(models=models, root=root, folder=folder, poolings=poolings)
        else:
            if args.tune:
                report = tune(models=models, root=root, folder=folder)
            else:
                report = benchmark(models=models, root=root, folder=folder, rate=args.rate)
            report["v2_pooling"] = args.pooling
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
