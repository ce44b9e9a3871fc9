"""How fast the live daemon's outputs follow the music: step response and steady-section jitter, v1 vs v2.

Two test files are built from the Soundtracks set-1 clips (``$MER_DATA_DIR``), each of ``SECTIONS``
sections of ``SECTION_S`` = 20 s (a clip's first 20 s, looped if it is shorter), 44.1 kHz stereo:

* ``energy``: the calmest against the most energetic clips, alternating: 341, 242, 271, 243, 272, 012
  (calm 341, 271, 272; energetic 242, 243, 012, as in issue 7);
* ``valence``: happy against sad clips, alternating. The clips are picked from the set-1 ratings by
  ``valence + happy - sad``: the three ``TARGET`` = HAPPY clips with the highest score and the three
  ``TARGET`` = SAD clips with the lowest (005, 036, 009, 031, 003, 037 with the shipped ratings; the
  ids are printed and stored in the JSON). In this set happy and sad clips differ far less in rated
  valence (about 2 points of 9) than in happy and sad, hence the score.

Each file goes through the REAL daemon once per model, as a child process with default settings except
the input, the model and the sinks: ``mer-live --input FILE --fast --rate 10 --csv OUT --model M
--no-osc --no-control -q`` (``--fast`` only changes the pacing; the readings are those of a real-time
run, because updates follow stream time). From the CSV (the sent, smoothed values):

* for every section change at time ``t``, the step of an output runs from its level before the change
  (median over the last ``STEADY_S`` = 8 s of the previous section) to its level after it (median over
  the last 8 s of the new section); ``t50`` / ``t90`` are the first stream times after ``t`` at which the
  output has covered 50 % / 90 % of that step. Steps smaller than ``MIN_STEP`` (0.05 in the 0-1 units)
  are left out (not a step: the jitter alone would cover half of it);
* the jitter of an output is its standard deviation inside the last 8 s of each section, averaged over
  the sections (as issue 7 defines it: it counts the music's own movement inside a section too, which a
  faster model follows more); ``noise`` is the update-to-update part of it, ``std(diff) / sqrt(2)``
  inside the same spans, which a slow drift does not raise.

Reported per model and output: mean t50 and t90 over the steps (and the worst), mean step size,
jitter. Run (both models in one run; ``--smoothing S`` overrides the default for both):

    python benchmarks/responsiveness.py --v1 mer_live/models/a2mid2e_joint.onnx \
        --v2 mer_live/models/musicnn_joint.onnx --out benchmarks/responsiveness.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SECTION_S = 20.0
STEADY_S = 8.0
MIN_STEP = 0.05  # a step must stand well above the outputs' jitter (about 0.01-0.04)
RATE = 10.0
FILE_RATE = 44100
FILE_CHANNELS = 2
ENERGY_CLIPS = ("341", "242", "271", "243", "272", "012")  # calm, energetic, calm, energetic, calm, energetic
OUTPUTS = {"energy": ("energy", "tension", "valence"), "valence": ("valence", "happy", "sad", "energy")}
PICKS_PER_SIDE = 3
GOAL_T50_S = 2.5
GOAL_OUTPUTS = ("energy", "tension")
RUN_TIMEOUT_S = 600.0


def valence_clips(*, root: Path) -> tuple[str, ...]:
    """Happy and sad clips, alternating (happy first): see the module docstring."""
    from mer_live import labels, soundtracks

    data = soundtracks.load(root=root)
    valence, happy, sad = (labels.EMOTIONS.index(name) for name in ("valence", "happy", "sad"))
    score = {c.clip_id: float(c.ratings[valence] + c.ratings[happy] - c.ratings[sad]) for c in data.clips}
    happiest = sorted((c.clip_id for c in data.clips if c.target == "HAPPY"), key=lambda i: -score[i])
    saddest = sorted((c.clip_id for c in data.clips if c.target == "SAD"), key=lambda i: score[i])
    chosen: list[str] = []
    for pair in zip(happiest[:PICKS_PER_SIDE], saddest[:PICKS_PER_SIDE]):
        chosen.extend(pair)
    return tuple(chosen)


def build_file(*, clip_ids: tuple[str, ...], root: Path, path: Path) -> Path:
    """Concatenate the first ``SECTION_S`` of each clip (looped if shorter) into a 44.1 kHz stereo WAV."""
    import soundfile
    import soxr

    from mer_live import soundtracks

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


def run_daemon(*, input_path: Path, model: Path, csv_path: Path, extra: tuple[str, ...] = ()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The real daemon over ``input_path`` (``extra``: more options, e.g. ``--smoothing 1``); returns
    stream times ``(n,)`` and each emotion's ``(n,)``."""
    command = [
        sys.executable, "-m", "mer_live", "--input", str(input_path), "--fast", "--rate", f"{RATE:g}",
        "--csv", str(csv_path), "--model", str(model), "--no-osc", "--no-control", "-q", *extra,
    ]
    csv_path.unlink(missing_ok=True)  # the CSV sink appends: start from an empty file
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"daemon failed ({done.returncode}): {done.stderr[-2000:]}")
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["valence"] != ""]
    times = np.array([float(row["stream_time_s"]) for row in rows])
    from mer_live import labels

    return times, {name: np.array([float(row[name]) for row in rows]) for name in labels.EMOTIONS}


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


def _fmt(value: float | None, spec: str = "6.2f") -> str:
    return format(value, spec) if value is not None else "   n/a"


def markdown(report: dict) -> str:
    """The README's table of a report: t50 / t90 (mean over steps), jitter / noise, v1 against v2."""
    lines = ["| file | output | v1 t50 / t90 s | v2 t50 / t90 s | v1 jitter / noise | v2 jitter / noise | v1, v2 mean step |",
             "|---|---|---|---|---|---|---|"]
    for name, spec in report["files"].items():
        for out in OUTPUTS[name]:
            v1, v2 = (report["results"][label][name]["outputs"][out] for label in ("v1", "v2"))
            cells = [f"{_fmt(m['t50_mean_s'], '.1f').strip()} / {_fmt(m['t90_mean_s'], '.1f').strip()}"
                     + ("" if m["steps_measured"] == spec["sections"] - 1 else f" ({m['steps_measured']} of {spec['sections'] - 1} steps)")
                     for m in (v1, v2)]
            noise = [f"{m['jitter']:.3f} / {m['noise']:.4f}" for m in (v1, v2)]
            lines.append(f"| {name} | {out} | {cells[0]} | {cells[1]} | {noise[0]} | {noise[1]} | "
                         f"{v1['mean_abs_step']:.2f}, {v2['mean_abs_step']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from mer_live import soundtracks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v1", type=Path, help="the v1 model file")
    parser.add_argument("--v2", type=Path, help="the v2 model file")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--keep", type=Path, help="keep the test files and CSVs in this folder")
    parser.add_argument("--markdown", type=Path, help="render the table of an existing --out JSON as markdown and exit")
    parser.add_argument("--smoothing", type=float, help="pass --smoothing S to both daemons (default: the daemon's default)")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    if args.v1 is None or args.v2 is None:
        parser.error("--v1 and --v2 are needed")
    root = soundtracks.data_dir()
    models = {"v1": args.v1, "v2": args.v2}
    report: dict = {"machine": platform.processor() or platform.machine(), "rate_hz": RATE, "smoothing_s": args.smoothing,
                    "section_s": SECTION_S, "steady_s": STEADY_S, "min_step": MIN_STEP,
                    "models": {k: str(v) for k, v in models.items()}, "files": {}, "results": {}}
    with tempfile.TemporaryDirectory() as temp:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        files = {"energy": ENERGY_CLIPS, "valence": valence_clips(root=root)}
        for name, clips in files.items():
            path = build_file(clip_ids=clips, root=root, path=folder / f"responsiveness_{name}.wav")
            report["files"][name] = {"clips": list(clips), "sections": len(clips)}
            for label, model in models.items():
                started = time.perf_counter()
                extra = ("--smoothing", f"{args.smoothing:g}") if args.smoothing is not None else ()
                times, traces = run_daemon(input_path=path, model=model, csv_path=folder / f"{name}_{label}.csv", extra=extra)
                report["results"].setdefault(label, {})[name] = {
                    "run_s": time.perf_counter() - started,
                    "outputs": {out: step_metrics(times=times, values=traces[out], sections=len(clips))
                                for out in OUTPUTS[name]},
                }
    print(f"files: energy = clips {', '.join(report['files']['energy']['clips'])}; "
          f"valence = clips {', '.join(report['files']['valence']['clips'])} (happy, sad alternating)")
    print(f"{'file':8} {'output':8} {'model':5} {'t50 mean':>9} {'t50 max':>8} {'t90 mean':>9} {'t90 max':>8} "
          f"{'|step|':>7} {'jitter':>7} {'noise':>7}")
    for name in files:
        for out in OUTPUTS[name]:
            for label in models:
                m = report["results"][label][name]["outputs"][out]
                print(f"{name:8} {out:8} {label:5} {_fmt(m['t50_mean_s'], '9.2f')} {_fmt(m['t50_max_s'], '8.2f')} "
                      f"{_fmt(m['t90_mean_s'], '9.2f')} {_fmt(m['t90_max_s'], '8.2f')} {m['mean_abs_step']:7.3f} "
                      f"{m['jitter']:7.4f} {m['noise']:7.4f}")
    goal = {}
    for out in GOAL_OUTPUTS:
        v1, v2 = (report["results"][k]["energy"]["outputs"][out] for k in ("v1", "v2"))
        goal[out] = {"t50_mean_s": v2["t50_mean_s"], "t50_within_goal": v2["t50_mean_s"] is not None and v2["t50_mean_s"] <= GOAL_T50_S,
                     "jitter_v2_over_v1": v2["jitter"] / v1["jitter"] if v1["jitter"] > 0 else None}
    report["goal"] = goal
    for out, g in goal.items():
        ratio = g["jitter_v2_over_v1"]
        print(f"goal {out}: v2 t50 {_fmt(g['t50_mean_s'], '.2f')} s (<= {GOAL_T50_S} s: {g['t50_within_goal']}), "
              f"jitter v2/v1 {_fmt(ratio, '.2f')}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
