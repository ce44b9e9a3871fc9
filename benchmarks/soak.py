"""Soak test: the real daemon on hours of audio, as fast as it goes; RSS growth, rows lost, malformed rows.

Runs ``python -m mer_live --input FILE --fast --rate R --csv CSV --osc 127.0.0.1:PORT --no-control -q``
as a child process on a long file made by looping music clips (the Soundtracks clips under
``$MER_DATA_DIR`` when present, else the synthesised demo piece): 44.1 kHz mono FLAC, so decoding,
resampling, features, the model, the output stage, OSC and CSV are all in the loop. The file is made
once per length and kept in ``--audio-dir``.

While it runs, the child's resident memory (VmRSS from ``/proc/PID/status``) is sampled every
``--sample-s`` seconds, next to the CSV's row count so far. Reported:

* RSS growth: the last sample minus the first sample taken once ``WARM_UP_ROWS`` rows (10 minutes of
  audio at 10/s, past the model's and allocator's start-up) are written, and the maximum minus that;
* rows lost: updates the run must produce (``round(seconds * rate)``, one at every ``k / rate``) that
  are missing from the CSV; rows malformed: rows with the wrong number of cells, unparseable numbers,
  an unknown state, values outside 0-1, or a ``stream_time_s`` that is not ``k / rate`` for row ``k``;
* the updates that reached the OSC receiver (a UDP socket read on a thread of this script);
* throughput: audio seconds per wall second.

Goal (issue 8): growth at most 20 MB, 0 rows lost, 0 malformed. Run, e.g.:

    nice python benchmarks/soak.py --hours 8 --rate 10 --out benchmarks/soak.json
    python benchmarks/soak.py --hours 0.1          # a quick check
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench import report, write

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FILE_RATE = 44100
BLOCK_SECONDS = 600  # the long file is written in blocks of this many seconds
CLIPS = 24  # Soundtracks clips looped (in a fixed order) to make the long file
WARM_UP_ROWS = 6000
DEFAULT_SAMPLE_S = 5.0
GOAL_GROWTH_MB = 20.0
CSV_CELLS = 19
STATES = {"warming", "running", "silent", "no-input"}
VALUE_COLUMNS = slice(4, CSV_CELLS)
TIME_TOLERANCE_S = 0.0015  # stream_time_s has 3 decimals
KIB_PER_MB = 1024.0


def _clips() -> tuple[list[np.ndarray], str]:
    """Mono clips at ``FILE_RATE``: Soundtracks set 1 if the data is there, else the demo piece."""
    import soundfile
    import soxr

    root = Path(os.environ.get("MER_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data")) / "soundtracks" / "audio"
    paths = sorted(root.glob("**/*.mp3"))[:CLIPS] if root.is_dir() else []
    clips = []
    for path in paths:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)
        clips.append(soxr.resample(mono, rate, FILE_RATE).astype(np.float32) if rate != FILE_RATE else mono)
    if clips:
        return clips, f"{len(clips)} Soundtracks clips ({sum(len(c) for c in clips) / FILE_RATE:.0f} s) looped"
    from mer_live.live import demo
    from mer_live.features.spectrogram import SAMPLE_RATE

    piece = soxr.resample(demo.synthesise(), SAMPLE_RATE, FILE_RATE).astype(np.float32)
    return [piece], "the demo piece looped"


def make_audio(*, seconds: float, directory: Path) -> tuple[Path, str]:
    """A FLAC of exactly ``seconds`` at ``FILE_RATE`` made of looped clips (kept for the next run)."""
    import soundfile

    path = directory / f"soak_{seconds:.0f}s.flac"
    note = path.with_suffix(".txt")
    if path.is_file() and note.is_file():
        return path, note.read_text()
    clips, what = _clips()
    loop = np.concatenate(clips)
    total = int(round(seconds * FILE_RATE))
    written = 0
    with soundfile.SoundFile(str(path) + ".part", "w", FILE_RATE, 1, subtype="PCM_16", format="FLAC") as out:
        while written < total:
            count = min(BLOCK_SECONDS * FILE_RATE, total - written)
            index = (written + np.arange(count)) % len(loop)
            out.write(loop[index])
            written += count
    os.replace(str(path) + ".part", path)
    note.write_text(what)
    return path, what


class Receiver:
    """A real UDP receiver on a thread: the update numbers seen in /mer/status."""

    def __init__(self) -> None:
        from pythonosc.osc_packet import OscPacket

        self._parse = OscPacket
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.updates: set[int] = set()
        self.last_dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self.socket.recv(65536)
            except (socket.timeout, OSError):
                continue
            for timed in self._parse(datagram).messages:
                if timed.message.address == "/mer/status":
                    params = timed.message.params
                    self.updates.add(int(params[3]))
                    if len(params) > 4:
                        self.last_dropped = int(params[4])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.socket.close()


def rss_kib(*, pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def check_csv(*, path: Path, rate: float, expected: int) -> dict:
    """Rows present, lost and malformed (see the module docstring)."""
    rows = malformed = 0
    first_bad = None
    with open(path, encoding="utf-8") as handle:
        handle.readline()  # header
        for line in handle:
            rows += 1
            cells = line.rstrip("\n").split(",")
            problem = None
            if len(cells) != CSV_CELLS or not line.endswith("\n"):
                problem = "cells"
            elif cells[2] not in STATES:
                problem = "state"
            else:
                try:
                    stream_time = float(cells[1])
                    float(cells[3])
                    values = [float(v) for v in cells[VALUE_COLUMNS] if v != ""]
                except ValueError:
                    problem = "number"
                else:
                    if abs(stream_time - rows / rate) > TIME_TOLERANCE_S:
                        problem = "stream_time"
                    elif any(not 0.0 <= v <= 1.0 for v in values):
                        problem = "range"
            if problem:
                malformed += 1
                first_bad = first_bad or f"row {rows}: {problem}: {line[:120]!r}"
    return {"rows": rows, "lost": max(0, expected - rows), "extra": max(0, rows - expected), "malformed": malformed, "first_malformed": first_bad}


def soak(*, hours: float, rate: float, audio_dir: Path, sample_s: float) -> dict:
    seconds = hours * 3600.0
    audio, what = make_audio(seconds=seconds, directory=audio_dir)
    expected = int(round(seconds * rate))
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="mer-live-soak-") as tmp:
        csv = Path(tmp) / "soak.csv"
        command = [
            sys.executable, "-m", "mer_live", "--input", str(audio), "--fast", "--rate", f"{rate:g}",
            "--csv", str(csv), "--osc", f"127.0.0.1:{receiver.port}", "--no-control", "-q",
        ]
        env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
        started = time.monotonic()
        child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        samples: list[tuple[float, int, int]] = []  # (wall s, rows so far, RSS KiB)
        rows_seen, offset = 0, 0
        while child.poll() is None:
            time.sleep(sample_s)
            rss = rss_kib(pid=child.pid)
            if csv.is_file():
                with open(csv, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                offset += len(chunk)
                rows_seen += chunk.count(b"\n")
            if rss is not None:
                samples.append((time.monotonic() - started, max(0, rows_seen - 1), rss))
                print(f"{samples[-1][0]:8.0f} s  {samples[-1][1]:8d} rows  {rss / KIB_PER_MB:7.1f} MB", flush=True)
        _, err = child.communicate()
        wall = time.monotonic() - started
        time.sleep(0.5)
        receiver.close()
        result = check_csv(path=csv, rate=rate, expected=expected)
    warm = [s for s in samples if s[1] >= min(WARM_UP_ROWS, expected // 10)]
    reference = warm[0][2] if warm else (samples[0][2] if samples else 0)
    last = samples[-1][2] if samples else 0
    peak = max((s[2] for s in warm), default=last)
    return {
        "audio": f"{seconds / 3600:g} h ({what}), {FILE_RATE} Hz mono FLAC",
        "command": " ".join(command[1:]).replace(str(audio), audio.name),
        "exit_status": child.returncode,
        "stderr_tail": err.strip().splitlines()[-5:],
        "wall_s": round(wall, 1),
        "audio_s_per_wall_s": round(seconds / wall, 1),
        "updates_expected": expected,
        "csv": result,
        "osc_updates_received": len(receiver.updates),
        "osc_last_dropped": receiver.last_dropped,
        "rss_reference_mb": round(reference / KIB_PER_MB, 1),
        "rss_last_mb": round(last / KIB_PER_MB, 1),
        "rss_peak_after_warm_up_mb": round(peak / KIB_PER_MB, 1),
        "rss_growth_mb": round((last - reference) / KIB_PER_MB, 1),
        "rss_peak_growth_mb": round((peak - reference) / KIB_PER_MB, 1),
        "rss_samples": [[round(t, 1), r, k] for t, r, k in samples],
    }


def table(*, result: dict) -> str:
    csv = result["csv"]
    lines = [
        "| audio | wall time | RSS after warm-up → end (peak) | growth | rows expected / written | lost | malformed | OSC updates received |",
        "|---|---|---|---|---|---|---|---|",
        f"| {result['audio']} | {result['wall_s'] / 60:.0f} min ({result['audio_s_per_wall_s']:g}× real time) "
        f"| {result['rss_reference_mb']} → {result['rss_last_mb']} MB ({result['rss_peak_after_warm_up_mb']}) "
        f"| {result['rss_growth_mb']:+} MB (peak {result['rss_peak_growth_mb']:+}) "
        f"| {result['updates_expected']} / {csv['rows']} | {csv['lost']} | {csv['malformed']} | {result['osc_updates_received']} |",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=8.0, help="hours of audio (default 8)")
    parser.add_argument("--rate", type=float, default=10.0, help="updates per second (default 10)")
    parser.add_argument("--sample-s", type=float, default=DEFAULT_SAMPLE_S, help="RSS sampling interval")
    parser.add_argument("--audio-dir", type=Path, default=Path(tempfile.gettempdir()), help="where the long file is made and kept")
    parser.add_argument("--out", type=Path, help="write the result here as JSON")
    args = parser.parse_args()
    if not (args.hours > 0 and math.isfinite(args.hours)):
        parser.error("--hours must be a positive number")
    result = soak(hours=args.hours, rate=args.rate, audio_dir=args.audio_dir, sample_s=args.sample_s)
    result = report(**result)
    print(table(result=result))
    csv = result["csv"]
    ok = result["rss_growth_mb"] <= GOAL_GROWTH_MB and csv["lost"] == 0 and csv["malformed"] == 0 and result["exit_status"] == 0
    print(f"goal (growth <= {GOAL_GROWTH_MB:g} MB, 0 lost, 0 malformed, exit 0): {'met' if ok else 'NOT met'}")
    if args.out:
        write(result, args.out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
