"""How far the live outputs move between contrasting sections of band music at equal loudness, v1/v2/v3.

Test files are built from 4q-dev clips (``$MER_DATA_DIR/4q-dev``: pop, rock, electronic, jazz, ...), each
section ``SECTION_S`` = 20 s (seconds 5-25 of a 30 s clip), every section scaled to the same RMS level
(``LEVEL_DBFS``), so that loudness alone cannot move an output; 44.1 kHz stereo:

* ``arousal``: low-arousal clips (Q3, Q4) against high-arousal clips (Q1, Q2), alternating, 8 sections;
* ``valence``: positive against negative valence at the same arousal, alternating: Q1 / Q2 then Q4 / Q3,
  8 sections.

The clips are drawn once per quadrant with a fixed seed (``SEED``) from the 4q-dev clips of outer fold 0 of
``configs/train_v3.toml`` (the 4q-dev folds stratified by quadrant, seed 0), chosen before any model was run
on them. The shipped v3 was fitted on all 600 4q-dev clips (their quadrant signs) and so has seen these clips'
signs; the run ``v3 fold 0`` is the same recipe fitted without outer fold 0 (``mer-live-train fit3 --hold-out-fold
0``), on which these clips are held out: it is the honest figure.

Each file goes through the REAL daemon (``benchmarks/responsiveness.py``'s ``run_daemon``: ``mer-live --input
FILE --fast --rate 10 --csv OUT --model M --no-osc --no-control -q``, default smoothing) once per model, all
models in one run. Per output, from the sent 0-1 values (``responsiveness.step_metrics``): each section
change's step (median of the last 8 s of the new section minus that of the previous one), signed by the
direction the contrast should move it (+1 from low to high arousal for energy, from negative to positive
valence for valence; the other outputs unsigned), its median over the 7 changes; t50 (mean over the
changes whose step is >= 0.05); the steady-section spread (std inside the last 8 s of each section, mean);
and ``step / spread``.

    python benchmarks/band_steps.py --model v1=v1 --model v2=v2 --model v3=v3 \\
        --model "v3 fold 0=runs/v3/v3_fold0.onnx" --out benchmarks/band_steps.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import responsiveness  # noqa: E402  (benchmarks/responsiveness.py: the daemon run and the step measures)

SECTION_S = responsiveness.SECTION_S
CLIP_OFFSET_S = 5.0
LEVEL_DBFS = -20.0
SEED = 25
SECTIONS = 8
FILE_RATE = responsiveness.FILE_RATE
OUTPUTS = ("energy", "valence", "tension", "happy", "sad", "tender", "anger", "fear")
FILES = {  # per file: the quadrants of its sections in order, and the sign each change should take per output
    "arousal": ("Q3", "Q1", "Q4", "Q2", "Q3", "Q1", "Q4", "Q2"),
    "valence": ("Q2", "Q1", "Q2", "Q1", "Q3", "Q4", "Q3", "Q4"),
}
DRIVEN = {"arousal": "energy", "valence": "valence"}  # the output each file's contrast should move
HIGH = {"energy": ("Q1", "Q2"), "valence": ("Q1", "Q4")}


def pick_clips(*, root: Path) -> dict[str, list[str]]:
    """Two clips per quadrant (the files use each once per file), from outer fold 0, seeded."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from mer_live.train import crossgenre

    data = crossgenre.load(root=root)
    fold = crossgenre.stratified_folds(quadrants=data.quadrants, num_folds=5, seed=0)[0]
    rng = np.random.default_rng(SEED)
    picks = {}
    for quadrant in crossgenre.QUADRANTS:
        members = sorted(data.files[i] for i in fold if data.quadrants[i] == quadrant)
        picks[quadrant] = [members[i] for i in rng.choice(len(members), size=2, replace=False)]
    return picks


def build_file(*, quadrants: tuple[str, ...], picks: dict[str, list[str]], root: Path, path: Path) -> list[str]:
    """The sections at equal RMS level as a 44.1 kHz stereo float WAV; returns the clips used, in order."""
    import soundfile
    import soxr

    used, parts, seen = [], [], {q: 0 for q in picks}
    length = int(SECTION_S * FILE_RATE)
    for quadrant in quadrants:
        name = picks[quadrant][seen[quadrant] % len(picks[quadrant])]
        seen[quadrant] += 1
        audio, rate = soundfile.read(str(root / "4q-dev" / "audio" / name), dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)
        if rate != FILE_RATE:
            mono = soxr.resample(mono, rate, FILE_RATE).astype(np.float32)
        start = int(CLIP_OFFSET_S * FILE_RATE)
        section = mono[(start + np.arange(length)) % len(mono)]
        section *= 10.0 ** (LEVEL_DBFS / 20.0) / max(float(np.sqrt(np.mean(section ** 2))), 1e-9)
        parts.append(np.clip(section, -1.0, 1.0))
        used.append(name)
    signal = np.concatenate(parts)
    soundfile.write(str(path), np.stack([signal, signal], axis=1), FILE_RATE, subtype="FLOAT")
    return used


def measure(*, trace, quadrants: tuple[str, ...]) -> dict:
    """Per output: median signed step, t50, spread, step / spread (see the module docstring)."""
    results = {}
    for output in OUTPUTS:
        metrics = responsiveness.step_metrics(times=trace.times, values=trace.values[output], sections=len(quadrants))
        sizes = []
        for k, step in enumerate(metrics["steps"], start=1):
            if output in HIGH:
                direction = (quadrants[k] in HIGH[output]) - (quadrants[k - 1] in HIGH[output])
                sizes.append(step["size"] * direction if direction else np.nan)
            else:
                sizes.append(abs(step["size"]))
        sizes = [s for s in sizes if np.isfinite(s)]
        median = float(np.median(sizes)) if sizes else None
        results[output] = {"median_step": median, "t50_mean_s": metrics["t50_mean_s"],
                           "steps_measured": metrics["steps_measured"], "spread": metrics["jitter"],
                           "step_over_spread": None if median is None else median / max(metrics["jitter"], 1e-9),
                           "steps": [s["size"] for s in metrics["steps"]], "levels": metrics["levels"]}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, metavar="NAME=MODEL",
                        help="a run: its name and the --model value (v1, v2, v3 or a file); repeatable")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    from mer_live.train.soundtracks import data_dir

    root = data_dir()
    models = dict(item.split("=", 1) for item in args.model)
    picks = pick_clips(root=root)
    report = {"command": "python benchmarks/band_steps.py " + " ".join(f"--model {k}={v}" for k, v in models.items()),
              "section_s": SECTION_S, "level_dbfs": LEVEL_DBFS, "seed": SEED, "picks": picks, "files": {},
              "runs": {}, "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, quadrants in FILES.items():
            paths[name] = Path(folder) / f"{name}.wav"
            report["files"][name] = {"quadrants": quadrants,
                                     "clips": build_file(quadrants=quadrants, picks=picks, root=root, path=paths[name])}
        for run, model in models.items():
            report["runs"][run] = {}
            for name, quadrants in FILES.items():
                trace = responsiveness.run_daemon(input_path=paths[name], model=model,
                                                  csv_path=Path(folder) / f"{name}.csv")
                report["runs"][run][name] = measure(trace=trace, quadrants=quadrants)
            driven = {name: report["runs"][run][name][DRIVEN[name]] for name in FILES}
            print(f"{run}: energy step {driven['arousal']['median_step']:.3f} "
                  f"(t50 {driven['arousal']['t50_mean_s']}, step/spread {driven['arousal']['step_over_spread']:.2f}); "
                  f"valence step {driven['valence']['median_step']:.3f} "
                  f"(t50 {driven['valence']['t50_mean_s']}, step/spread {driven['valence']['step_over_spread']:.2f})",
                  flush=True)
    report["load_average_after"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
