"""Where the v2 daemon's CPU goes, stage by stage: CPU seconds per second of audio (= share of one core
in real time), offline on the demo piece as a 44.1 kHz stereo signal at 10 updates/s, one ONNX thread.

Stages (each timed with ``time.thread_time`` on the thread that runs it, so the threads do not blur):

* ``resample``: one streaming soxr resampler 44.1 -> 16 kHz, fed 0.1 s at a time (as the worker does);
* ``mel``: :class:`mer_live.features.mel.MelStream` on the resampled audio, 0.1 s at a time;
* ``worker thread``: the whole worker loop (:class:`mer_live.live.worker.Worker` on the worker's own thread,
  ``--fast``, no sinks): ring buffer read, mono mix, level, resampling, mel frames, handing patches over,
  pooling, smoothing, the explanation and the reading; ``worker, other`` = it minus ``resample`` and ``mel``;
* ``patch thread``: every model call of that run (real and warm-up patches) on the patch thread, once
  with patch reuse (:mod:`mer_live.model.patch_model`) and once with ``MER_PATCH_REUSE=0`` (every patch whole);
* ``OSC sink`` / ``CSV sink``: building and sending each reading's OSC bundle to a local socket that never
  reads, and writing its CSV row to a file (on their lane threads in the daemon).

What the real daemon spends beyond these (the file feeder thread, the output lanes' queues and
wake-ups, the readout) is the difference between ``benchmarks/daemon_cpu.py``'s total and their sum.
Run:

    python benchmarks/daemon_stages.py --v2 mer_live/model/assets/musicnn_joint.onnx --repeats 3 --out benchmarks/daemon_stages.json
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench import report, write

FILE_RATE = 44100
FILE_CHANNELS = 2
RATE_HZ = 10.0
CHUNK_S = 1.0 / RATE_HZ
DEFAULT_REPEATS = 3
PATCH_REUSE_ENV = "MER_PATCH_REUSE"


class TimedModel:
    """The model, with the CPU time of every ``process`` call summed (on whichever thread calls it)."""

    def __init__(self, *, model) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.cpu_s = 0.0
        self.patches = 0

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._model, name)

    def process(self, *, windows: np.ndarray):
        started = time.thread_time()
        result = self._model.process(windows=windows)
        with self._lock:
            self.cpu_s += time.thread_time() - started
            self.patches += 1 if np.ndim(windows) == 2 else len(windows)
        return result


class Keep:
    """A sink that keeps the readings (for timing the real sinks afterwards)."""

    def __init__(self) -> None:
        self.readings = []

    def process(self, *, reading) -> None:
        self.readings.append(reading)

    def close(self) -> None:
        pass


def load_model(*, path: Path, reuse: bool):
    from mer_live.model.emotion_model import EmotionModel

    previous = os.environ.pop(PATCH_REUSE_ENV, None)
    if not reuse:
        os.environ[PATCH_REUSE_ENV] = "0"
    try:
        return EmotionModel(path=path, threads=1)
    finally:
        os.environ.pop(PATCH_REUSE_ENV, None)
        if previous is not None:
            os.environ[PATCH_REUSE_ENV] = previous


def run_worker(*, model, audio: np.ndarray) -> tuple[float, TimedModel, list]:
    """The worker loop on this thread: (its CPU seconds, the timed model, the readings)."""
    from mer_live.live.source import ArraySource
    from mer_live.live.worker import Worker

    timed = TimedModel(model=model)
    keep = Keep()
    source = ArraySource(samples=audio, samplerate=FILE_RATE, fast=True)
    worker = Worker(source=source, model=timed, sinks=[keep], rate=RATE_HZ)
    source.start()
    started = time.thread_time()
    worker.run()
    cpu = time.thread_time() - started
    worker._inference.close()  # waits for the patch thread: every model call is counted
    source.close()
    if worker.error:
        raise RuntimeError(worker.error)
    return cpu, timed, keep.readings


def time_front_end(*, audio: np.ndarray) -> dict[str, float]:
    import soxr

    from mer_live.features import spectrogram, mel

    chunk = round(CHUNK_S * FILE_RATE)
    mono = spectrogram.to_mono(audio=audio, channel=None)
    resampler = soxr.ResampleStream(FILE_RATE, mel.SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    started = time.thread_time()
    pieces = [resampler.resample_chunk(mono[s : s + chunk], last=s + chunk >= len(mono)) for s in range(0, len(mono), chunk)]
    resample_s = time.thread_time() - started
    stream = mel.MelStream()
    started = time.thread_time()
    for piece in pieces:
        stream.process(samples=piece)
    mel_s = time.thread_time() - started
    return {"resample": resample_s, "mel": mel_s}


def time_sinks(*, readings: list, directory: Path) -> dict[str, float]:
    from mer_live.outputs.csv import CsvSink
    from mer_live.outputs.osc import OscSink

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        osc = OscSink(targets=[("127.0.0.1", receiver.getsockname()[1])])
        csv = CsvSink(path=directory / f"stages_{time.monotonic_ns()}.csv")
        result = {}
        for name, sink in (("OSC sink", osc), ("CSV sink", csv)):
            started = time.thread_time()
            for reading in readings:
                sink.process(reading=reading)
            result[name] = time.thread_time() - started
            sink.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v2", type=Path, required=True, help="the v2 model file")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="runs of each stage (the median is reported)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    import soxr

    from mer_live.live import demo
    from mer_live.features import spectrogram

    piece = np.tile(demo.synthesise(), 2)
    audio = np.repeat(soxr.resample(piece, spectrogram.SAMPLE_RATE, FILE_RATE).astype(np.float32)[:, None], FILE_CHANNELS, axis=1)
    seconds = len(audio) / FILE_RATE
    models = {"reuse": load_model(path=args.v2, reuse=True), "whole": load_model(path=args.v2, reuse=False)}
    if not models["reuse"].incremental:
        print(f"note: {args.v2} has no frame-local branches; both patch runs are whole", file=sys.stderr)
    samples: dict[str, list[float]] = {}
    patches = 0
    with tempfile.TemporaryDirectory() as temp:
        for _ in range(args.repeats):
            for name, value in time_front_end(audio=audio).items():
                samples.setdefault(name, []).append(value)
            for label, model in models.items():
                worker_s, timed, readings = run_worker(model=model, audio=audio)
                samples.setdefault(f"patch thread ({'patch reuse' if label == 'reuse' else 'whole patches'})", []).append(timed.cpu_s)
                patches = timed.patches
                if label == "reuse":
                    samples.setdefault("worker thread", []).append(worker_s)
                    for name, value in time_sinks(readings=[r for r in readings if r.is_update], directory=Path(temp)).items():
                        samples.setdefault(name, []).append(value)
    share = {name: float(np.median(values)) / seconds for name, values in samples.items()}
    share["worker, other"] = share["worker thread"] - share["resample"] - share["mel"]
    order = ["resample", "mel", "worker, other", "worker thread", "patch thread (whole patches)",
             "patch thread (patch reuse)", "OSC sink", "CSV sink"]
    data = report(
        model=str(args.v2),
        incremental=models["reuse"].incremental,
        audio_seconds=seconds,
        rate_hz=RATE_HZ,
        patches_per_run=patches,
        repeats=args.repeats,
        share_of_one_core={name: share[name] for name in order},
        cpu_seconds=samples,
    )
    print(f"{seconds:.1f} s of audio, {patches} model patches per run, median of {args.repeats} runs")
    print(f"{'stage':32} {'share of one core':>18} {'ms per patch':>13}")
    for name in order:
        per_patch = f"{share[name] * seconds / patches * 1000:13.1f}" if name.startswith("patch thread") else ""
        print(f"{name:32} {share[name]:18.4f} {per_patch}")
    write(data, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
