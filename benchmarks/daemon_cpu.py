"""CPU share of one core used by the live daemon: v1, v2 float and the default model (its INT8 pack), in one run.

Each (model, rate) runs the real daemon (``python -m mer_live``) as a child process on the same file, paced in
real time (``--input FILE`` without ``--fast``, so the worker waits for audio like on a sound card),
sending OSC to a local socket and writing CSV, with the ONNX model on one thread: v1 at 4/s and 10/s,
v2 float (``MER_PRECISION=float``, the default before the INT8 pack), the default model in float when it
is not v2, and the default model as it runs by default, at 10/s (a v2-kind model runs each 3 s patch
once, so its cost hardly depends on the rate, and its p99 is the update that also runs a patch).
The time from start to the first CSV row is the first reading. After a warm-up of ``WARM_UP_UPDATES``
updates, the child's CPU time (user + system, from ``/proc/PID/stat``) is sampled over ``--seconds`` of
wall time (``--default-seconds`` for the default model's run): CPU share = CPU seconds / wall seconds (1.0
= one core busy). The daemon's own exit line gives the per-update compute time (read, resample, frames,
model, sinks), p50 and p99. Every run is reported as a ratio to v1 at 10/s, measured in the same
invocation. Goals (issue 24): the default at 10/s at most 5 % of one core, p99 at most 10 ms, the first
reading within 1 s.

What is counted: the daemon process, all its threads (the worker, the patch thread, the file feeder,
one lane thread per output, the main thread), from ``/proc/PID/stat``; not its child processes. With
``--input FILE`` there is none: the feeder thread reads the file (43 blocks of 1024 frames a second) where
a sound card's capture child (:mod:`mer_live.live.capture`) would run live, so the file's reading is counted
and PortAudio's callback is not.

The input is the demo piece (``mer_live.live.demo``) written as a 44.1 kHz stereo WAV, so resampling and
the mono mix are included, or ``--input FILE``. ``--blas-comparison`` adds a 4/s run with numpy's
default of one OpenBLAS thread per CPU (the daemon sets ``OPENBLAS_NUM_THREADS=1``).
``--reuse-comparison`` adds a v2 run with ``MER_PATCH_REUSE=0``: every patch computed whole, as before
:mod:`mer_live.model.patch_model`, in the same invocation. ``--per-thread`` also reports each thread's
share (names from ``py-spy dump``, which must be installed; CPU from ``/proc/PID/task``). Run:

    python benchmarks/daemon_cpu.py --seconds 60 --default-seconds 600 --reuse-comparison --per-thread \
        --out benchmarks/daemon_cpu.json

``--meter`` measures the live meter instead: at each rate the daemon runs with its stdout on a
pseudo-terminal (``METER_COLUMNS`` x ``METER_LINES``, drained by this script), once drawing the
full-screen meter and once with ``-q`` (no readout), alternately ``--repeats`` times; the meter's cost is
the difference of the CPU shares, and its ratio the quotient, in the same run:

    python benchmarks/daemon_cpu.py --meter --seconds 20 --repeats 2 --out benchmarks/meter_cpu.json

(the meter runs use the shipped default model, or ``--default`` when given).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import report, write
from mer_live.model.emotion_model import DEFAULT_MODEL

# (label, --model, rate, environment): v2 float is the default before the INT8 pack (issue 24's baseline)
DEFAULT_RUN = f"{DEFAULT_MODEL} (default)"
RUNS = (("v1", "v1", 4.0, {}), ("v1", "v1", 10.0, {}), ("v2 float", "v2", 10.0, {"MER_PRECISION": "float"}),
        *([(f"{DEFAULT_MODEL} float", DEFAULT_MODEL, 10.0, {"MER_PRECISION": "float"})] if DEFAULT_MODEL != "v2" else []),
        (DEFAULT_RUN, DEFAULT_MODEL, 10.0, {}))
BASELINE = ("v1", 10.0)
BLAS_RUN = ("v1", "v1", 4.0, {})
REUSE_RUN = (f"{DEFAULT_MODEL}, every patch whole", DEFAULT_MODEL, 10.0, {"MER_PATCH_REUSE": "0"})
GOAL_CPU_SHARE = 0.05  # issue 24 (issue 7's was 0.10 and p99 30 ms)
GOAL_P99_MS = 10.0
GOAL_FIRST_READING_S = 1.0
WARM_UP_UPDATES = 8
DEFAULT_SECONDS = 20.0
FILE_RATE = 44100
FILE_CHANNELS = 2
REPEATS_OF_DEMO = 2
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.05
METER_COLUMNS, METER_LINES = 120, 40
METER_RATES = (4.0, 10.0)
RUN_ENV = ("MER_PATCH_REUSE", "MER_PRECISION")  # mer_live.model.emotion_model's: cleared, then set per run
THREAD_LINE = re.compile(r'^Thread (\d+) \([^)]*\): "([^"]*)"', re.MULTILINE)
STOP_LINE = re.compile(r"compute per update p50 ([0-9.]+) ms, p99 ([0-9.]+) ms")


def cpu_seconds(*, pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(*, pid: int) -> dict[int, float]:
    """User + system CPU seconds of each thread of process ``pid``, by thread id, from /proc."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended
            continue
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def thread_names(*, pid: int) -> dict[int, str]:
    """Python thread names by thread id, from ``py-spy dump`` (Python does not name its OS threads)."""
    import shutil

    if shutil.which("py-spy") is None:
        raise RuntimeError("--per-thread needs py-spy (pip install py-spy)")
    dump = subprocess.run(["py-spy", "dump", "-p", str(pid), "--nonblocking"], capture_output=True, text=True,
                          timeout=START_TIMEOUT_S).stdout
    return {int(m.group(1)): m.group(2) for m in THREAD_LINE.finditer(dump)}


def write_input(*, directory: Path, seconds: float) -> Path:
    import soundfile
    import soxr

    from mer_live.live import demo
    from mer_live.features.spectrogram import SAMPLE_RATE

    once = demo.synthesise()
    piece = np.tile(once, max(REPEATS_OF_DEMO, math.ceil((seconds + START_TIMEOUT_S) * SAMPLE_RATE / len(once))))
    upsampled = soxr.resample(piece, SAMPLE_RATE, FILE_RATE).astype(np.float32)
    path = directory / "benchmark_input.wav"
    soundfile.write(str(path), np.repeat(upsampled[:, None], FILE_CHANNELS, axis=1), FILE_RATE, subtype="FLOAT")
    return path


def rows(path: Path) -> int:
    return max(0, path.read_bytes().count(b"\n") - 1) if path.exists() else 0


class Terminal:
    """A pseudo-terminal of ``METER_COLUMNS`` x ``METER_LINES`` for the daemon's stdout; a thread reads
    (and drops) what is drawn on it, as a terminal emulator would."""

    def __init__(self) -> None:
        import fcntl
        import pty
        import struct
        import termios
        import threading

        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", METER_LINES, METER_COLUMNS, 0, 0))
        self.bytes_drawn = 0
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.bytes_drawn += len(data)

    def close(self) -> None:
        os.close(self.slave)
        self._reader.join(STOP_TIMEOUT_S)
        os.close(self.master)


def measure(
    *, input_path: Path, label: str, model: Path | str, rate: float, seconds: float, directory: Path, osc_port: int,
    blas_threads: int | None = None, terminal: str | None = None, run_env: dict | None = None, per_thread: bool = False,
) -> dict[str, float]:
    """One daemon run. ``terminal``: None (stdout to /dev/null, as before), ``"meter"`` (stdout on a
    pseudo-terminal: the meter) or ``"quiet"`` (the same terminal, ``-q``: no readout)."""
    csv_path = directory / f"{label}_rate_{rate:g}_blas_{blas_threads}_{terminal}_{time.monotonic_ns()}.csv"
    env = dict(os.environ)
    env.pop("OPENBLAS_NUM_THREADS", None)
    for name in ("COLUMNS", "LINES"):  # the meter takes the terminal's size
        env.pop(name, None)
    if blas_threads is not None:
        env["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    for name in RUN_ENV:
        env.pop(name, None)
    env.update(run_env or {})
    command = [
        sys.executable, "-m", "mer_live", "--input", str(input_path), "--rate", str(rate), "--threads", "1",
        "--osc", f"127.0.0.1:{osc_port}", "--csv", str(csv_path), "--no-control", "--model", str(model),
    ]
    pty_out = Terminal() if terminal else None
    if terminal == "quiet":
        command.append("-q")
    stdout = pty_out.slave if pty_out else subprocess.DEVNULL
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + START_TIMEOUT_S
    first_reading_s = None
    while rows(csv_path) < WARM_UP_UPDATES:
        if first_reading_s is None and rows(csv_path) > 0:
            first_reading_s = time.monotonic() - started
        if time.monotonic() > deadline or child.poll() is not None:
            child.kill()
            raise RuntimeError(f"daemon did not start: {child.stderr.read()[-2000:]}")
        time.sleep(POLL_S)
    names = thread_names(pid=child.pid) if per_thread else {}
    threads_start = thread_cpu_seconds(pid=child.pid) if per_thread else {}
    cpu_start, wall_start, rows_start = cpu_seconds(pid=child.pid), time.monotonic(), rows(csv_path)
    time.sleep(seconds)
    cpu_end, wall_end, rows_end = cpu_seconds(pid=child.pid), time.monotonic(), rows(csv_path)
    threads_end = thread_cpu_seconds(pid=child.pid) if per_thread else {}
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=STOP_TIMEOUT_S)
    if pty_out is not None:
        pty_out.close()
    if child.returncode != 0:
        raise RuntimeError(f"daemon failed ({child.returncode}): {stderr[-2000:]}")
    match = STOP_LINE.search(stderr)
    if match is None and terminal != "quiet":  # -q prints warnings only, not the timing line
        raise RuntimeError(f"no timing line in the daemon's output: {stderr[-2000:]}")
    wall = wall_end - wall_start
    threads: dict[str, float] = {}
    for tid, end in threads_end.items():  # threads named alike (one per output lane) are kept apart by id
        name = names.get(tid, f"thread {tid}")  # an unnamed thread: not Python's (OpenBLAS, ONNX Runtime)
        name = " ".join(name.split()[:2]) if name.startswith("mer-live-output") else name  # not the target's address or path
        threads[name if name not in threads else f"{name} ({tid})"] = (end - threads_start.get(tid, 0.0)) / wall
    return {
        "model": label,
        "model_path": str(model),
        "rate_hz": rate,
        "terminal": terminal or "none",
        "terminal_bytes_per_s": (pty_out.bytes_drawn / wall) if pty_out else 0.0,
        "blas_threads": blas_threads or 1,
        "environment": run_env or {},
        "first_reading_s": first_reading_s,
        "cpu_share_of_one_core": (cpu_end - cpu_start) / wall,
        "wall_s": wall,
        "updates_per_s_measured": (rows_end - rows_start) / wall,
        "compute_p50_ms": float(match.group(1)) if match else math.nan,
        "compute_p99_ms": float(match.group(2)) if match else math.nan,
        **({"threads_share_of_one_core": dict(sorted(threads.items(), key=lambda item: -item[1]))} if per_thread else {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="measured wall time per rate")
    parser.add_argument("--input", type=Path, help="audio file to play (default: the demo piece, 44.1 kHz stereo)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--v1", default="v1", help="the v1 model (default: the shipped v1)")
    parser.add_argument("--v2", default="v2", help="the v2 model (default: the shipped v2)")
    parser.add_argument("--default", default=DEFAULT_MODEL,
                        help=f"the default model (default: the shipped {DEFAULT_MODEL}; with --meter, the model to run)")
    parser.add_argument("--default-seconds", type=float, help="measured wall time of the default model's run (default: --seconds)")
    parser.add_argument(
        "--blas-comparison", action="store_true",
        help="also run v1 at 4/s with one OpenBLAS thread per CPU (numpy's default), to show what the daemon's "
        "OPENBLAS_NUM_THREADS=1 saves",
    )
    parser.add_argument(
        "--reuse-comparison", action="store_true",
        help="also run v2 at 10/s with MER_PATCH_REUSE=0 (every patch computed whole), to show what "
        "reusing the frame-local branch rows of overlapping patches saves",
    )
    parser.add_argument(
        "--per-thread", action="store_true",
        help="also report each thread's CPU share (thread names from py-spy dump, CPU from /proc/PID/task)",
    )
    parser.add_argument("--meter", action="store_true", help="measure the live meter (pseudo-terminal) against -q instead")
    parser.add_argument("--repeats", type=int, default=2, help="with --meter: meter/no-meter pairs per rate")
    args = parser.parse_args(argv)
    if args.meter:
        return meter_main(args=args)
    longest = max(args.seconds, args.default_seconds or 0.0)
    with tempfile.TemporaryDirectory() as temp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))  # a receiver that never reads: sending costs what it costs live
        directory = Path(temp)
        input_path = args.input or write_input(directory=directory, seconds=longest)
        port = sink.getsockname()[1]
        models = {"v1": args.v1, "v2": args.v2, DEFAULT_MODEL: args.default}
        runs = [(*run, None) for run in RUNS]
        if args.reuse_comparison:
            runs.append((*REUSE_RUN, None))
        if args.blas_comparison:
            runs.append((*BLAS_RUN, os.cpu_count()))
        results = [
            measure(input_path=input_path, label=label, model=models[model], rate=rate, directory=directory,
                    seconds=args.default_seconds if label == DEFAULT_RUN and args.default_seconds else args.seconds,
                    osc_port=port, blas_threads=blas, run_env=run_env, per_thread=args.per_thread)
            for label, model, rate, run_env, blas in runs
        ]
    baseline = next(r for r in results if (r["model"], r["rate_hz"]) == BASELINE and r["blas_threads"] == 1)
    for result in results:
        result["cpu_ratio_vs_v1_10_per_s"] = result["cpu_share_of_one_core"] / baseline["cpu_share_of_one_core"]
        result["within_goal"] = (result["cpu_share_of_one_core"] <= GOAL_CPU_SHARE and result["compute_p99_ms"] <= GOAL_P99_MS
                                 and (result["first_reading_s"] or math.inf) <= GOAL_FIRST_READING_S)
    data = report(goals={"cpu_share": GOAL_CPU_SHARE, "p99_ms": GOAL_P99_MS, "first_reading_s": GOAL_FIRST_READING_S},
                  input=str(args.input or "demo piece, 44.1 kHz stereo WAV"), results=results)
    print(f"{'model':22} {'rate/s':>7} {'BLAS thr':>8} {'CPU share of 1 core':>20} {'ratio vs v1 10/s':>17} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'first s':>8} {'updates/s':>10}")
    for r in results:
        print(f"{r['model']:22} {r['rate_hz']:7g} {r['blas_threads']:8d} {r['cpu_share_of_one_core']:20.3f} "
              f"{r['cpu_ratio_vs_v1_10_per_s']:17.2f} {r['compute_p50_ms']:8.1f} {r['compute_p99_ms']:8.1f} "
              f"{r['first_reading_s'] or math.nan:8.2f} {r['updates_per_s_measured']:10.2f}")
    for r in results:
        if "threads_share_of_one_core" in r:
            print(f"{r['model']} at {r['rate_hz']:g}/s: " + ", ".join(
                f"{name} {share:.4f}" for name, share in r["threads_share_of_one_core"].items() if share > 0))
    write(data, args.out)
    return 0


def meter_main(*, args: argparse.Namespace) -> int:
    """``--meter``: at each rate, alternate runs with the meter and with -q on the same terminal."""
    with tempfile.TemporaryDirectory() as temp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        directory = Path(temp)
        input_path = args.input or write_input(directory=directory, seconds=args.seconds)
        port = sink.getsockname()[1]
        model = args.default
        runs = []
        for rate in METER_RATES:
            for _ in range(args.repeats):
                for terminal in ("quiet", "meter"):
                    runs.append(measure(input_path=input_path, label="meter", model=model, rate=rate, seconds=args.seconds, directory=directory,
                                        osc_port=port, terminal=terminal))
    summary = []
    for rate in METER_RATES:
        share = {
            terminal: float(np.mean([r["cpu_share_of_one_core"] for r in runs if r["rate_hz"] == rate and r["terminal"] == terminal]))
            for terminal in ("quiet", "meter")
        }
        drawn = float(np.mean([r["terminal_bytes_per_s"] for r in runs if r["rate_hz"] == rate and r["terminal"] == "meter"]))
        summary.append({
            "rate_hz": rate, "cpu_share_quiet": share["quiet"], "cpu_share_meter": share["meter"],
            "meter_cost_share_of_one_core": share["meter"] - share["quiet"], "meter_cpu_ratio": share["meter"] / share["quiet"],
            "meter_bytes_per_s": drawn,
        })
    data = report(input=str(args.input or "demo piece, 44.1 kHz stereo WAV"),
                  terminal=f"{METER_COLUMNS}x{METER_LINES} pseudo-terminal", seconds_per_run=args.seconds,
                  repeats=args.repeats, summary=summary, runs=runs)
    print(f"{'rate/s':>7} {'CPU -q':>8} {'CPU meter':>10} {'meter cost':>11} {'ratio':>7} {'drawn KB/s':>11}")
    for s in summary:
        print(
            f"{s['rate_hz']:7g} {s['cpu_share_quiet']:8.3f} {s['cpu_share_meter']:10.3f} {s['meter_cost_share_of_one_core']:11.4f} "
            f"{s['meter_cpu_ratio']:7.2f} {s['meter_bytes_per_s'] / 1000:11.1f}"
        )
    write(data, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
