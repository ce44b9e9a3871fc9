"""Make docs/guide/lighting-map.png again: the shipped ``rgb-wash`` map driven by a real run of the demo piece.

    python3 docs/lighting_figure.py

The daemon plays the demo piece (``--demo --fast --csv``); its logged updates are replayed through the DMX
sink's own renderer at 40 frames per second, interpolated between updates as the sink does, and the figure
shows the values (top) and what the map makes of them (bottom: the 16-bit dimmer, the tension channel,
and the RGB wash as a strip of its colour). Needs the ``report`` extra (matplotlib).
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parent
OUT = DOCS / "guide" / "lighting-map.png"
FPS = 40.0
SOURCES = ("energy", "valence", "tension")


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mer_live.core import labels
    from mer_live.outputs.dmx import channel_map as cm
    from mer_live.outputs.dmx import signals

    with tempfile.TemporaryDirectory() as temp:
        log = Path(temp) / "demo.csv"
        subprocess.run([sys.executable, "-m", "mer_live", "--demo", "--fast", "--csv", str(log), "--no-osc", "--no-control", "-q"],
                       check=True, timeout=600)
        with log.open() as handle:
            rows = [r for r in csv.DictReader(handle) if r["valence"] != ""]
    times = np.array([float(r["stream_time_s"]) for r in rows])
    vectors = np.zeros((len(rows), len(signals.NAMES)))
    for index, row in enumerate(rows):
        for name in (*labels.EMOTIONS, *labels.MID_LEVELS):
            kind = "emotion" if name in labels.EMOTIONS else "mid"
            vectors[index, signals.INDEX[f"{kind}.{name}"]] = float(row[name])
        vectors[index, signals.LEVEL_AT] = float(row["level_dbfs"])
        vectors[index, signals.SILENCE_AT] = float(row["state"] in signals.SILENT_STATES)
    channel_map = cm.load(cm.resolve("rgb-wash"))
    renderer = cm.Renderer(channel_map)
    frame = np.zeros((1, 512), dtype=np.uint8)
    frame_times = np.arange(times[0], times[-1], 1.0 / FPS)
    frames = []
    silent = vectors[:, signals.SILENCE_AT] > 0.5
    targets = [renderer.target(vector, silent=bool(quiet)) for vector, quiet in zip(vectors, silent)]
    for t in frame_times:  # each update's targets, linear between updates, then the fades: as the sink does
        after = min(np.searchsorted(times, t, side="right"), len(times) - 1)
        before = max(after - 1, 0)
        span = times[after] - times[before]
        progress = 0.0 if span <= 0 else (t - times[before]) / span
        target = targets[before] + progress * (targets[after] - targets[before])
        renderer.follow(target, silent=bool(silent[before]), dt=1.0 / FPS, frame=frame)
        frames.append(frame[0, :6].copy())
    frames = np.array(frames, dtype=float)
    figure, (top, bottom, strip) = plt.subplots(3, 1, figsize=(9, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 3, 0.8]})
    for name in SOURCES:
        top.plot(times, vectors[:, signals.INDEX[f"emotion.{name}"]], label=f"emotion.{name}")
    top.set_ylabel("value (0-1)")
    top.legend(loc="upper right", fontsize=8, ncol=3)
    top.set_title("rgb-wash: the demo piece through the channel map at 40 frames/s")
    bottom.plot(frame_times, (frames[:, 0] * 256 + frames[:, 1]) / 65535, label="slots 1-2: dimmer (16-bit, gamma 2, fade 0.5 s)")
    bottom.plot(frame_times, frames[:, 5] / 255, label="slot 6: tension (s-curve of 0.3-0.9, out 0-102)")
    bottom.set_ylabel("DMX (fraction)")
    bottom.legend(loc="upper right", fontsize=8)
    strip.imshow(frames[None, :, 2:5] / 255.0, aspect="auto", extent=(frame_times[0], frame_times[-1], 0, 1))
    strip.set_yticks([])
    strip.set_ylabel("3-5 RGB", rotation=0, ha="right", va="center", fontsize=8)
    strip.set_xlabel("stream time (s)")
    figure.tight_layout()
    figure.savefig(OUT, dpi=110)
    print(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
