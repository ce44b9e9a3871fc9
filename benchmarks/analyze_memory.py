"""Peak RSS of ``mer-live analyze`` (the default model) on 1-minute to 2-hour files, against whole-file decoding.

Writes WAV files (44.1 kHz stereo, 16-bit, a tone plus noise) of each ``--minutes`` length, then runs, each
in a fresh process that reports its own peak RSS (``VmHWM``):

* ``mer-live analyze FILE --jobs 1 --csv OUT`` (block-wise decoding; what ships);
* the old path, for the lengths up to ``--before-max-minutes``: the whole file decoded, mixed and
  resampled at once (``audio.load_audio``), then ``features.analyse`` over all of it, which is what
  ``mer-live analyze`` did before (its windows were then made from that in batches).

Goal: peak RSS does not grow with the file's length, and stays under 500 MB for 2 hours. Run (the README's table):

    python benchmarks/analyze_memory.py --out benchmarks/analyze_memory.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from bench import report, write

RATE = 44100
CHANNELS = 2
WRITE_BLOCK_S = 60
DEFAULT_MINUTES = (1, 10, 120)
GOAL_MIB = 500.0  # issue 24: a 2-hour file under 500 MB, not growing with the length
BEFORE_MAX_MINUTES = 10
KIB = 1024
MIB = 1024 * 1024
# Each command runs in a fresh interpreter and prints its own peak RSS (VmHWM of its address space, which
# starts anew at exec; wait4's ru_maxrss is not used, as Linux carries it over from the parent).
REPORT_PEAK = "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1], file=sys.stderr)"
NEW_PATH = "import sys; from mer_live.offline.analysis import main; status = main(sys.argv[1:]); " + REPORT_PEAK
OLD_PATH = ("import sys; from mer_live.audio import load_audio; from mer_live.features import spectrogram; "
            "spectrogram.analyse(samples=load_audio(path=sys.argv[1])); " + REPORT_PEAK)


def write_tone(path: Path, *, minutes: int) -> None:
    """A long WAV written one minute at a time (the writer's memory stays small too)."""
    rng = np.random.default_rng(minutes)
    with soundfile.SoundFile(str(path), "w", samplerate=RATE, channels=CHANNELS, subtype="PCM_16") as handle:
        for minute in range(minutes):
            t = minute * 60 + np.arange(WRITE_BLOCK_S * RATE) / RATE
            tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
            noise = 0.05 * rng.standard_normal((len(t), CHANNELS))
            handle.write((tone[:, None] + noise).astype(np.float32))


def peak_rss(code: str, *arguments: str) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of ``python -c code arguments...`` run to completion."""
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{arguments} failed: {completed.stderr[-2000:]}")
    return int(completed.stderr.strip().splitlines()[-1]) * KIB / MIB, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=list(DEFAULT_MINUTES))
    parser.add_argument("--before-max-minutes", type=int, default=BEFORE_MAX_MINUTES)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mer-memory-") as folder:
        for minutes in args.minutes:
            audio = Path(folder) / f"tone_{minutes}min.wav"
            write_tone(audio, minutes=minutes)
            row = {"minutes": minutes, "file_mib": audio.stat().st_size / MIB}
            row["after_peak_rss_mib"], row["after_wall_s"] = peak_rss(
                NEW_PATH, str(audio), "--jobs", "1", "-q", "--csv", str(Path(folder) / "out.csv"))
            if minutes <= args.before_max_minutes:
                row["before_peak_rss_mib"], row["before_wall_s"] = peak_rss(OLD_PATH, str(audio))
            rows.append(row)
            print(json.dumps(row), flush=True)
            audio.unlink()
    first, last = rows[0], rows[-1]
    data = report(rows=rows, goal_mib=GOAL_MIB,
                  after_growth_mib=last["after_peak_rss_mib"] - first["after_peak_rss_mib"],
                  after_ratio_longest_to_shortest=last["after_peak_rss_mib"] / first["after_peak_rss_mib"],
                  goal_met=max(row["after_peak_rss_mib"] for row in rows) * MIB / 1e6 <= GOAL_MIB)
    print(f"peak RSS, {first['minutes']} min: {first['after_peak_rss_mib']:.0f} MiB; {last['minutes']} min: "
          f"{last['after_peak_rss_mib']:.0f} MiB (growth {data['after_growth_mib']:+.0f} MiB)")
    write(data, args.out)


if __name__ == "__main__":
    main()
