"""Inference time of one 10 s window under ONNX Runtime with one thread, per network width.

Exports freshly initialised Joint networks at widths 0.25, 0.5 and 1.0 (inference time does not depend on
the weights), times them and the shipped model in the same run, and reports each as milliseconds per window
(median over repeats) and as a ratio to the full-width network. Run:

    python benchmarks/inference.py --out models/benchmark.json

The issue's budget is 40 ms per window on one thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import report, write

from mer_live.features import spectrogram
from mer_live.model.emotion_model import EmotionModel, default_model_path

WIDTHS = (0.25, 0.5, 1.0)
BASELINE_WIDTH = 1.0
WARM_UP_RUNS = 5
DEFAULT_REPEATS = 50
BUDGET_MS = 40.0
MS_PER_S = 1000.0
SEED = 0


def time_model(*, path: Path, window: np.ndarray, repeats: int) -> dict[str, float]:
    """Median and minimum milliseconds of one single-window inference on one thread."""
    model = EmotionModel(path=path, threads=1)
    for _ in range(WARM_UP_RUNS):
        model.process(windows=window)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.process(windows=window)
        times.append((time.perf_counter() - started) * MS_PER_S)
    model.close()
    return {"median_ms": float(np.median(times)), "min_ms": float(np.min(times)), "repeats": repeats}


def export_width(*, width: float, folder: Path) -> tuple[Path, int]:
    """A randomly initialised Joint network of ``width`` exported to ``folder``; returns (path, parameters)."""
    from mer_live.train.export import export_onnx
    from mer_live.train.networks import VARIANT_JOINT, EmotionNet

    net = EmotionNet(variant=VARIANT_JOINT, width=width)
    path = folder / f"joint_w{width:g}.onnx"
    export_onnx(net=net, path=path, variant=f"benchmark_w{width:g}", data_hash="benchmark")
    return path, sum(p.numel() for p in net.parameters())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--model", type=Path, default=default_model_path(), help="the shipped model to time")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(SEED)
    samples = (0.1 * rng.standard_normal(int(spectrogram.WINDOW_SECONDS * spectrogram.SAMPLE_RATE))).astype(np.float32)
    block = spectrogram.analyse(samples=samples)
    window = spectrogram.normalise(block=block.slice(start=0, stop=spectrogram.NUM_FRAMES))[None]

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        for width in WIDTHS:
            path, parameters = export_width(width=width, folder=Path(folder))
            results[f"width_{width:g}"] = {"width": width, "parameters": int(parameters),
                                           **time_model(path=path, window=window, repeats=args.repeats)}
    if args.model.is_file():
        shipped = EmotionModel(path=args.model)
        variant = shipped.variant
        shipped.close()
        results["shipped"] = {"path": str(args.model), "variant": variant,
                              **time_model(path=args.model, window=window, repeats=args.repeats)}
    baseline = results[f"width_{BASELINE_WIDTH:g}"]["median_ms"]
    for entry in results.values():
        entry["ratio_vs_full_width"] = entry["median_ms"] / baseline
    data = report(threads=1, batch=1, budget_ms=BUDGET_MS, results=results)
    for name, entry in results.items():
        print(f"{name:12s} {entry['median_ms']:8.2f} ms/window (min {entry['min_ms']:.2f}), "
              f"{entry['ratio_vs_full_width']:.3f} x full width")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    write(data, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
