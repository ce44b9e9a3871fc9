"""Throughput of ``mer-live analyze`` as a user runs it, v1 against v2 float against v2 (the default), in one run.

On the first ``--clips`` Soundtracks clips, for each of ``--rounds`` rounds, with the default ``--jobs`` (all
cores) and with ``--jobs 1``, in rotating order, a fresh ``python -m mer_live analyze CLIPS --csv OUT`` of:

* ``v1``: ``--model v1`` (the VGG A2Mid2E-Joint on 10 s windows);
* ``v2 float``: ``--model v2 --precision float`` (the exported float model, reusing overlapping rows: the
  default before the INT8 pack);
* the default model in float, when it is not v2 (``--precision float``);
* the default model as it runs by default (its INT8 pack, :mod:`mer_live.model.patch_model`).

Each run is timed from start to exit (start-up, model loading and worker processes included): real-time
factor (seconds of audio per wall second) and CPU seconds (all processes). A variant's figure is the median
over rounds; its speed-up over ``v2 float`` is the median of the per-round ratios (measured minutes apart on
a shared machine, so ratios are steadier than absolute figures). Also, once: a stage profile of the default
in one process (CPU time of decode, resample, front-end, model), and the seed's path (``librosa.load``, a
``librosa.stft`` log-filtered spectrogram, the full-width VGG in torch eager mode, one thread; v1's
windows). ``--ray`` adds a local Ray cluster of 1 against 2 nodes (v1).

    python benchmarks/analyze_throughput.py --out benchmarks/analyze_throughput.json
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # as mer-live analyze
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import MS, ROOT, Timer, clips, report, write
from mer_live.model.emotion_model import DEFAULT_MODEL

VARIANTS = {"v1": ["--model", "v1"], "v2 float": ["--model", "v2", "--precision", "float"]}
if DEFAULT_MODEL != "v2":
    VARIANTS[f"{DEFAULT_MODEL} float"] = ["--model", DEFAULT_MODEL, "--precision", "float"]
DEFAULT = f"{DEFAULT_MODEL} (default)"
VARIANTS[DEFAULT] = ["--model", DEFAULT_MODEL]
BASELINE = "v2 float"
DEFAULT_CLIPS = 40
GOALS = {"jobs_default_rtf": 300.0, "jobs1_rtf": 150.0}  # issue 24, the default model
SEED_BATCH = 8


def run_cli(paths: list[Path], *, variant: str, jobs: int, folder: Path) -> dict:
    """One ``mer-live analyze`` process over ``paths``: wall and CPU seconds, and the per-file rows."""
    out = folder / f"{variant.replace(' ', '_')}_{jobs}.csv"
    out.unlink(missing_ok=True)
    (folder / (out.name + ".journal")).unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "MER_PRECISION"} | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "mer_live", "analyze", *map(str, paths), "--csv", str(out), "-q", "--jobs", str(jobs),
               *VARIANTS[variant]]
    with Timer() as timer:
        subprocess.run(command, check=True, env=env, cwd=folder)
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    audio_s = sum(float(row["duration_s"]) for row in rows)
    return {"wall_s": timer.wall_s, "cpu_s": timer.cpu_s, "audio_s": audio_s, "rtf": audio_s / timer.wall_s,
            "audio_s_per_cpu_s": audio_s / timer.cpu_s, "windows": sum(int(row["num_windows"]) for row in rows)}


def profile(paths: list[Path]) -> dict:
    """The default model in one process, stage by stage (CPU time of this process)."""
    from mer_live.audio import FileDecoder
    from mer_live.offline.recipe import WindowModel

    model = WindowModel()
    seconds = dict.fromkeys(("decode_and_resample", "frontend", "model"), 0.0)
    windows = 0
    for path in paths:
        started = time.process_time()
        with FileDecoder(path, sample_rate=model.recipe.sample_rate) as decoder:
            blocks = list(decoder.blocks())
        seconds["decode_and_resample"] += time.process_time() - started
        started = time.process_time()
        frontend = model.recipe.frontend()
        batches = [batch for block in blocks for batch in frontend.process(block)] + frontend.flush()
        seconds["frontend"] += time.process_time() - started
        started = time.process_time()
        windows += sum(len(model.process(batch.inputs)) for batch in batches)
        seconds["model"] += time.process_time() - started
    model.close()
    return {"precision": model.precision, "windows": windows,
            "ms_per_window": {stage: MS * s / windows for stage, s in seconds.items()}}


def run_seed(paths: list[Path]) -> dict:
    """The seed's path: librosa loading and preprocessing, the full-width VGG in torch eager mode, 1 thread."""
    import librosa
    import torch

    from mer_live.features import spectrogram
    from mer_live.train.networks import VARIANT_JOINT, EmotionNet

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = EmotionNet(variant=VARIANT_JOINT, width=1.0).eval()
    bank, hop = spectrogram.filterbank(), int(round(spectrogram.HOP_SIZE))
    audio_s, windows = 0.0, 0
    with Timer() as timer:
        for path in paths:
            samples, _ = librosa.load(str(path), sr=spectrogram.SAMPLE_RATE, mono=True)
            audio_s += len(samples) / spectrogram.SAMPLE_RATE
            spectrum = np.abs(librosa.stft(samples, n_fft=spectrogram.FRAME_SIZE, hop_length=hop, window="hann",
                                           center=True))[: spectrogram.NUM_BINS].T
            linear = (spectrum @ bank).astype(np.float32)
            frames = librosa.util.frame(np.pad(samples, spectrogram.HALF_FRAME), frame_length=spectrogram.FRAME_SIZE,
                                        hop_length=hop, axis=0)
            power = np.mean(np.square(frames, dtype=np.float64), axis=1)
            starts = spectrogram.window_starts(total_frames=len(linear), hop_frames=int(round(spectrogram.FPS)))
            batch = [spectrogram.normalise(block=spectrogram.loop_pad(block=spectrogram.FrameBlock(
                linear=linear[s : s + spectrogram.NUM_FRAMES], power=power[s : s + spectrogram.NUM_FRAMES]))) for s in starts]
            with torch.no_grad():
                for first in range(0, len(batch), SEED_BATCH):
                    net(torch.from_numpy(np.stack(batch[first : first + SEED_BATCH])))
            windows += len(starts)
    return {"wall_s": timer.wall_s, "cpu_s": timer.cpu_s, "audio_s": audio_s, "rtf": audio_s / timer.wall_s,
            "windows": windows}


def run_ray(paths: list[Path], *, nodes: int) -> dict:
    """A fresh local cluster of ``nodes`` nodes of 1 CPU (v1), warmed up on ``nodes`` files, then timed."""
    sys.path.insert(0, str(ROOT / "tests"))
    from ray_nodes import LocalRayCluster

    driver = ("import sys, time; from pathlib import Path; from mer_live.model.emotion_model import resolve_model\n"
              "from mer_live.offline.cluster import analyse_on_ray, connect\n"
              "connect(address=sys.argv[1]); n = int(sys.argv[2]); paths = [Path(p) for p in sys.argv[3:]]\n"
              "list(analyse_on_ray(paths[:n], model_path=resolve_model('v1'), actors=n))\n"
              "t = time.perf_counter(); list(analyse_on_ray(paths, model_path=resolve_model('v1'), actors=n))\n"
              "print(time.perf_counter() - t)\n")
    with tempfile.TemporaryDirectory(prefix="mer-ray-bench-") as root, LocalRayCluster(Path(root), nodes=nodes) as cluster:
        done = subprocess.run([sys.executable, "-c", driver, cluster.address, str(nodes), *map(str, paths)],
                              capture_output=True, text=True, env=cluster.env, check=True)
    return {"nodes": nodes, "cpus_per_node": 1, "wall_s": float(done.stdout.strip().splitlines()[-1])}


def summarise(runs: list[dict], *, jobs_options: list[int]) -> dict:
    """Per variant and jobs: medians over rounds, and the median per-round ratio to the baseline and to v1."""
    table = {}
    for jobs in jobs_options:
        for variant in VARIANTS:
            mine = [r for r in runs if r["variant"] == variant and r["jobs"] == jobs]
            pairs = [(r, next(b for b in runs if b["round"] == r["round"] and b["jobs"] == jobs and b["variant"] == other))
                     for r in mine for other in (BASELINE, "v1")]
            table[f"{variant}, --jobs {jobs}"] = {
                "variant": variant, "jobs": jobs, "rounds": len(mine),
                "rtf": statistics.median(r["rtf"] for r in mine),
                "audio_s_per_cpu_s": statistics.median(r["audio_s_per_cpu_s"] for r in mine),
                "speedup_vs_v2_float": statistics.median(b["wall_s"] / r["wall_s"] for r, b in pairs if b["variant"] == BASELINE),
                "speedup_vs_v1": statistics.median(b["wall_s"] / r["wall_s"] for r, b in pairs if b["variant"] == "v1"),
            }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="the default jobs (mer-live's: all cores)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-seed", dest="seed", action="store_false", help="skip the seed's path")
    parser.add_argument("--ray", action="store_true", help="also 1 node against 2 nodes on a local Ray cluster (v1)")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    args = parser.parse_args()
    paths = clips("soundtracks", args.clips)
    result = report(clips=len(paths), rounds=args.rounds, variants=VARIANTS, profile=profile(paths))
    print(f"profile of the default ({result['profile']['precision']}): "
          + ", ".join(f"{k} {v:.2f}" for k, v in result["profile"]["ms_per_window"].items()) + " ms/window", flush=True)
    jobs_options = sorted({args.jobs, 1}, reverse=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="mer-throughput-") as folder:
        for round_index in range(args.rounds):
            for jobs in jobs_options:
                order = list(VARIANTS)[round_index % len(VARIANTS):] + list(VARIANTS)[: round_index % len(VARIANTS)]
                for variant in order:
                    run = {"round": round_index, "variant": variant, "jobs": jobs, "load": os.getloadavg()[0]}
                    run |= run_cli(paths, variant=variant, jobs=jobs, folder=Path(folder))
                    runs.append(run)
                    print(f"  round {round_index + 1} {variant:14s} --jobs {jobs}: {run['rtf']:6.1f}x real time "
                          f"({run['audio_s_per_cpu_s']:.0f} audio s per CPU s), load {run['load']:.1f}", flush=True)
    result["runs"] = runs
    result["audio_s"] = runs[0]["audio_s"]
    result["table"] = table = summarise(runs, jobs_options=jobs_options)
    for name, row in table.items():
        print(f"{name:28s} {row['rtf']:6.1f}x real time, {row['speedup_vs_v2_float']:.2f}x v2 float, "
              f"{row['speedup_vs_v1']:.2f}x v1")
    result["goals"] = GOALS | {"jobs_default_met": table[f"{DEFAULT}, --jobs {args.jobs}"]["rtf"] >= GOALS["jobs_default_rtf"],
                               "jobs1_met": table[f"{DEFAULT}, --jobs 1"]["rtf"] >= GOALS["jobs1_rtf"]}
    if args.seed:
        result["seed"] = seed = run_seed(paths)
        print(f"seed's path: {seed['rtf']:.1f}x real time (one thread)")
    if args.ray:
        result["ray"] = [run_ray(paths, nodes=n) for n in (1, 2)]
    write(result, args.out)


if __name__ == "__main__":
    main()
