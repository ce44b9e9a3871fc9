"""Throughput of ``mer-live analyze`` on a fixed set of shared clips, against the seed's path, in one run.

On the first ``--clips`` Soundtracks clips (sorted by name, from ``$MER_DATA_DIR``), it measures:

1. a profile of one process, stage by stage (decode, resample, front-end, model, output), in CPU time;
2. mer-live with ``--jobs 1`` and with ``--jobs N`` (default: all cores): wall time, real-time factor
   (seconds of audio per second), files per second, ms per window, and CPU seconds;
3. the seed's path on the same clips, one thread: ``librosa.load`` (22.05 kHz, mono, soxr_hq), a
   ``librosa.stft`` log-filtered spectrogram (2048-sample Hann frames, hop 706 samples, the same
   filterbank and per-window normalisation), every 10 s window at a 1 s hop, and the original full-width
   A2Mid2E-Joint VGG (width 1.0, untrained weights) in torch eager mode;
4. optionally (``--ray``), a real local Ray cluster of one node against two (1 CPU each), on the same clips;
5. an estimate of how long ``--tracks`` tracks of ``--track-minutes`` take on N cores, from the measured
   per-core cost (CPU ms per window of the ``--jobs 1`` run; a v1 track of L s has about L - 9 windows,
   a v2 track about L - 2 patches).

``--model`` picks the model (``v1``, the default here, or ``v2``, or a path): the profile and the window
counts follow the model's recipe (:mod:`mer_live.offline.recipe`: v1's 10 s windows or v2's 3 s patches, both at
a 1 s hop). The seed's path is v1's, so it runs with a v1 model only.

Wall-clock numbers depend on what else the machine runs (its load average is recorded); CPU seconds
(this process and its children) are steadier, and the per-window ratio against the seed uses them.

Speed is reported as ratios within this run, against the seed's path (per window, one core each).
Run (the README's table):

    python benchmarks/analyze_throughput.py --ray --out benchmarks/analyze_throughput.json
    python benchmarks/analyze_throughput.py --model v2 --no-seed --out benchmarks/analyze_throughput_v2.json
"""

from __future__ import annotations

import os

# One BLAS thread, before numpy is imported, as mer-live analyze does (and as the daemon does).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import csv
import io
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mer_live.features import spectrogram
from mer_live.offline.catalogue import analyse_files
from mer_live.offline.decoder import FileDecoder
from mer_live.model.emotion_model import resolve_model
from mer_live.offline.recipe import DEFAULT_BATCH_WINDOWS, HOP_FRAMES, WindowModel

DEFAULT_CLIPS = 40
SEED_HOP_SAMPLES = int(round(spectrogram.HOP_SIZE))  # librosa needs an integer hop: 706
SEED_WIDTH = 1.0
SEED_BATCH = 8
GOAL_RTF = 300.0
GOAL_SPEEDUP = 3.0
DEFAULT_TRACKS = 100_000
DEFAULT_TRACK_MINUTES = 3.5
CORE_COUNTS = (2, 16, 64, 256)
SECONDS_PER_HOUR = 3600.0
MS = 1000.0


def data_dir() -> Path:
    default = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return Path(os.environ.get("MER_DATA_DIR", default))


def clips(count: int) -> list[Path]:
    found = sorted((data_dir() / "soundtracks" / "audio").glob("*.mp3"))[:count]
    if len(found) < count:
        sys.exit(f"analyze_throughput: only {len(found)} clips under {data_dir()} (set MER_DATA_DIR)")
    return found


def cpu_seconds(*, who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def profile(paths: list[Path], *, model: WindowModel) -> dict:
    """One process, stage by stage, in mer-live's own code path; CPU time of this process per stage (one
    BLAS and one ONNX Runtime thread, so it is the work done, whatever else the machine runs)."""
    import soundfile
    import soxr

    recipe = model.recipe
    seconds = dict.fromkeys(("decode", "resample", "frontend", "model", "output"), 0.0)
    audio_s, windows = 0.0, 0
    for path in paths:
        started = time.process_time()
        with soundfile.SoundFile(str(path)) as handle:
            rate = handle.samplerate
            blocks = [spectrogram.to_mono(audio=b) for b in handle.blocks(65536, dtype="float32", always_2d=True)]
        seconds["decode"] += time.process_time() - started
        started = time.process_time()
        stream = soxr.ResampleStream(rate, recipe.sample_rate, 1, dtype="float32", quality="HQ")
        resampled = [stream.resample_chunk(b, last=i == len(blocks) - 1) for i, b in enumerate(blocks)]
        seconds["resample"] += time.process_time() - started
        audio_s += sum(len(b) for b in resampled) / recipe.sample_rate
        started = time.process_time()
        frontend = recipe.frontend()
        batches = [batch for b in resampled for batch in frontend.process(b)] + frontend.flush()
        seconds["frontend"] += time.process_time() - started
        started = time.process_time()
        values = [model.process(batch.inputs) for batch in batches]
        seconds["model"] += time.process_time() - started
        windows += sum(len(v) for v in values)
        started = time.process_time()
        writer = csv.writer(io.StringIO())
        writer.writerows([[str(path), *np.concatenate(values).mean(axis=0)]])
        seconds["output"] += time.process_time() - started
    total = sum(seconds.values())
    return {
        "audio_s": audio_s, "windows": windows, "total_s": total, "rtf": audio_s / total,
        "stages": {name: {"s": s, "share": s / total, "ms_per_window": MS * s / windows} for name, s in seconds.items()},
    }


def run_mer_live(paths: list[Path], *, model_path: Path, jobs: int, audio_s: float) -> dict:
    cpu_before = cpu_seconds() + cpu_seconds(who=resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    results = list(analyse_files(paths, model_path=model_path, jobs=jobs, batch_windows=DEFAULT_BATCH_WINDOWS))
    wall = time.perf_counter() - started
    cpu = cpu_seconds() + cpu_seconds(who=resource.RUSAGE_CHILDREN) - cpu_before
    assert all(not r.error for r in results)
    windows = sum(r.num_windows for r in results)
    return {"jobs": jobs, "windows": windows, "wall_s": wall, "cpu_s": cpu, "rtf": audio_s / wall, "files_per_s": len(paths) / wall,
            "ms_per_window": MS * wall / windows, "cpu_ms_per_window": MS * cpu / windows,
            "audio_s_per_cpu_s": audio_s / cpu}


def seed_network():
    import torch

    from mer_live.train.networks import VARIANT_JOINT, EmotionNet

    torch.manual_seed(0)
    return EmotionNet(variant=VARIANT_JOINT, width=SEED_WIDTH).eval()


def run_seed(paths: list[Path], *, audio_s: float) -> dict:
    """The seed's path: librosa loading and preprocessing, full-width VGG in torch eager mode, 1 thread."""
    import librosa
    import torch

    torch.set_num_threads(1)
    net = seed_network()
    bank = spectrogram.filterbank()
    windows = 0
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    for path in paths:
        samples, _ = librosa.load(str(path), sr=spectrogram.SAMPLE_RATE, mono=True)
        spectrum = np.abs(librosa.stft(samples, n_fft=spectrogram.FRAME_SIZE, hop_length=SEED_HOP_SAMPLES,
                                       window="hann", center=True))[: spectrogram.NUM_BINS].T
        linear = (spectrum @ bank).astype(np.float32)
        padded = np.pad(samples, spectrogram.HALF_FRAME)  # as stft's centring
        frames = librosa.util.frame(padded, frame_length=spectrogram.FRAME_SIZE, hop_length=SEED_HOP_SAMPLES, axis=0)
        power = np.mean(np.square(frames, dtype=np.float64), axis=1)
        starts = spectrogram.window_starts(total_frames=len(linear), hop_frames=HOP_FRAMES)
        batch = []
        for start in starts:
            part = spectrogram.FrameBlock(linear=linear[start:start + spectrogram.NUM_FRAMES],
                                       power=power[start:start + spectrogram.NUM_FRAMES])
            batch.append(spectrogram.normalise(block=spectrogram.loop_pad(block=part)))
        with torch.no_grad():
            for first in range(0, len(batch), SEED_BATCH):
                net(torch.from_numpy(np.stack(batch[first:first + SEED_BATCH])))
        windows += len(starts)
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    return {"wall_s": wall, "cpu_s": cpu, "windows": windows, "rtf": audio_s / wall,
            "files_per_s": len(paths) / wall, "ms_per_window": MS * wall / windows,
            "cpu_ms_per_window": MS * cpu / windows}


RAY_DRIVER = """
import json, sys, time
from pathlib import Path
from mer_live.offline.cluster import analyse_on_ray, connect
address, model, nodes, paths = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), [Path(p) for p in sys.argv[4:]]
connect(address=address)
list(analyse_on_ray(paths[:nodes], model_path=model, actors=nodes))  # warm: worker processes, imports
started = time.perf_counter()
results = list(analyse_on_ray(paths, model_path=model, actors=nodes))
print(json.dumps({"wall_s": time.perf_counter() - started, "windows": sum(r.num_windows for r in results)}))
"""


def run_ray(paths: list[Path], *, model_path: Path, nodes: int, audio_s: float, windows: int) -> dict:
    """A fresh local cluster of ``nodes`` nodes of 1 CPU; a driver process (with the cluster's token)
    warms it up on ``nodes`` files, then times all of them, one model actor per node."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from ray_nodes import LocalRayCluster

    with tempfile.TemporaryDirectory(prefix="mer-ray-bench-") as root, \
            LocalRayCluster(Path(root), nodes=nodes) as cluster:
        completed = subprocess.run(
            [sys.executable, "-c", RAY_DRIVER, cluster.address, str(model_path), str(nodes), *map(str, paths)],
            capture_output=True, text=True, env=cluster.env, check=True)
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    assert measured["windows"] == windows
    wall = measured["wall_s"]
    return {"nodes": nodes, "cpus_per_node": 1, "wall_s": wall, "rtf": audio_s / wall,
            "files_per_s": len(paths) / wall}


def estimate(*, cpu_ms_per_window: float, span_s: float, tracks: int, track_minutes: float) -> list[dict]:
    """Hours for ``tracks`` tracks on N cores: a track of L s has about L - (span - 1) windows of ``span_s``
    seconds at a 1 s hop, at the measured CPU cost per window (conservative: a clip's decode costs more
    per window than a track's)."""
    windows = tracks * max(1.0, track_minutes * 60.0 - (span_s - 1.0))
    cpu_hours = windows * cpu_ms_per_window / MS / SECONDS_PER_HOUR
    return [{"cores": n, "hours": cpu_hours / n} for n in CORE_COUNTS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="v1", help="v1 (default), v2 or an ONNX file")
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--ray", action="store_true", help="also 1 node against 2 nodes on a local Ray cluster")
    parser.add_argument("--no-seed", dest="seed", action="store_false", help="skip the seed's path")
    parser.add_argument("--tracks", type=int, default=DEFAULT_TRACKS)
    parser.add_argument("--track-minutes", type=float, default=DEFAULT_TRACK_MINUTES)
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    args = parser.parse_args()
    paths = clips(args.clips)
    model_path = Path(str(resolve_model(args.model)))
    model = WindowModel(path=model_path)  # loaded once: the profile's model, and the recipe it needs
    recipe = model.recipe
    if args.seed and recipe.sample_rate != spectrogram.SAMPLE_RATE:
        args.seed = False  # the seed's path is v1's
        print("  (the seed's path is v1's: skipped for this model)")
    audio_s = 0.0
    for path in paths:
        with FileDecoder(path, sample_rate=recipe.sample_rate) as decoder:
            for _ in decoder.blocks():
                pass
            audio_s += decoder.duration_s
    report: dict = {
        "benchmark": "benchmarks/analyze_throughput.py", "command": "python " + " ".join(sys.argv),
        "machine": {"processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "load_average_at_start": os.getloadavg()},
        "model": {"path": str(model_path), "recipe": recipe.kind, "window_s": recipe.window_span_s, "hop_s": recipe.hop_s},
        "clips": len(paths), "audio_s": audio_s,
    }
    report["profile"] = profile(paths, model=model)
    model.close()
    print(f"{len(paths)} clips, {audio_s:.1f} s of audio, {report['profile']['windows']} windows of "
          f"{recipe.window_span_s:.1f} s (profile's decoder)", flush=True)
    for name, stage in report["profile"]["stages"].items():
        print(f"  profile {name:9s} {stage['ms_per_window']:6.2f} ms/window ({100 * stage['share']:4.1f} %)")
    report["mer_live_jobs1"] = run_mer_live(paths, model_path=model_path, jobs=1, audio_s=audio_s)
    report["mer_live_jobsN"] = run_mer_live(paths, model_path=model_path, jobs=args.jobs, audio_s=audio_s)
    report["windows"] = windows = report["mer_live_jobs1"]["windows"]
    assert report["mer_live_jobsN"]["windows"] == windows
    for key in ("mer_live_jobs1", "mer_live_jobsN"):
        r = report[key]
        print(f"  mer-live --jobs {r['jobs']}: {r['rtf']:.0f}x real time, {r['files_per_s']:.1f} files/s, "
              f"{r['ms_per_window']:.2f} ms/window ({r['cpu_ms_per_window']:.2f} CPU ms/window)", flush=True)
    if args.seed:
        report["seed"] = seed = run_seed(paths, audio_s=audio_s)
        report["speedup_per_window_one_core"] = seed["cpu_ms_per_window"] / report["mer_live_jobs1"]["cpu_ms_per_window"]
        report["speedup_wall_all_cores"] = seed["wall_s"] / report["mer_live_jobsN"]["wall_s"]
        print(f"  seed path: {seed['rtf']:.1f}x real time, {seed['ms_per_window']:.1f} ms/window; mer-live is "
              f"{report['speedup_per_window_one_core']:.1f}x faster per window on one core, "
              f"{report['speedup_wall_all_cores']:.1f}x with --jobs {args.jobs}", flush=True)
    if args.ray:
        report["ray"] = [run_ray(paths, model_path=model_path, nodes=n, audio_s=audio_s, windows=windows)
                         for n in (1, 2)]
        report["ray_two_over_one"] = report["ray"][0]["wall_s"] / report["ray"][1]["wall_s"]
        for r in report["ray"]:
            print(f"  ray, {r['nodes']} node(s) of 1 CPU: {r['rtf']:.0f}x real time, {r['files_per_s']:.1f} files/s")
        print(f"  ray: 2 nodes are {report['ray_two_over_one']:.2f}x 1 node")
    per_window = report["mer_live_jobs1"]["cpu_ms_per_window"]
    report["estimate"] = {"tracks": args.tracks, "track_minutes": args.track_minutes,
                          "cpu_ms_per_window": per_window,
                          "by_cores": estimate(cpu_ms_per_window=per_window, span_s=recipe.window_span_s, tracks=args.tracks,
                                               track_minutes=args.track_minutes)}
    for row in report["estimate"]["by_cores"]:
        print(f"  {args.tracks} tracks of {args.track_minutes:g} min on {row['cores']} cores: {row['hours']:.1f} h")
    report["goals"] = {"rtf": GOAL_RTF, "speedup": GOAL_SPEEDUP,
                       "rtf_met": report["mer_live_jobsN"]["rtf"] >= GOAL_RTF,
                       "speedup_met": report.get("speedup_per_window_one_core", 0.0) >= GOAL_SPEEDUP}
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
