"""What DMX costs the daemon: CPU share of one core and the worker's compute p50/p99, with and without DMX.

The real daemon (``python -m mer_live``) plays the same file in real time (``--input FILE``, the demo piece
as a 44.1 kHz stereo WAV, as in ``benchmarks/daemon_cpu.py``) at ``--rate`` updates per second, with OSC to a
socket that never reads (not ``-q``: the log gives the timings; the readout runs in both); the DMX runs add ``--dmx MAP`` for a map on **two universes** (the
shipped ``rgb-wash`` on universe 1, ``level-bar`` on universe 2) at ``--dmx-fps`` frames per second, over
Art-Net to a local socket that never reads (or ``--protocol sacn``, multicast with TTL 0). Runs alternate
without/with DMX ``--repeats`` times in the same invocation, so both see the same machine load.

First, what one frame costs with warm caches (the sink rendering and sending both universes in a loop in
this process; the readings come at ``--rate``): microseconds per frame, and times ``--dmx-fps``. Reported per run: the process's CPU share (``/proc/PID/stat``, after ``WARM_UP_S``), the worker's compute
time per update (p50, p99, from the daemon's exit line), and for DMX runs the frame clock thread's own CPU
share (``time.thread_time`` in that thread, from the daemon's log). The cost of DMX is the difference of
the means of the process CPU shares (noisy on a busy machine) and, directly, the frame clock's share plus
nothing else (the DMX lane's ``process`` only stores the reading). Goal (issue 20): at most 0.01 of a core.

    python benchmarks/dmx_cpu.py --seconds 20 --repeats 3 --out benchmarks/dmx_cpu.json
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import report, write  # noqa: E402
from daemon_cpu import STOP_LINE, cpu_seconds, write_input  # noqa: E402

from mer_live.outputs.dmx import channel_map as cm  # noqa: E402

GOAL_CORE = 0.01
WARM_UP_S = 5.0
STOP_TIMEOUT_S = 30.0
FRAME_CLOCK_LINE = re.compile(r"the frame clock used ([0-9.]+) % of a core")
FRAMES_LINE = re.compile(r"DMX .*: (\d+) frame\(s\) sent, (\d+) failed")


def two_universe_map(directory: Path) -> Path:
    """rgb-wash on universe 1 and level-bar on universe 2, as one map file."""
    first = cm.resolve("rgb-wash").read_text()
    second = cm.resolve("level-bar").read_text().replace("[[channel]]", "[[channel]]\nuniverse = 2").replace(
        "[[fixture]]", "[[fixture]]\nuniverse = 2").replace('name = "level-bar"\n', "").replace("description =", "# ")
    path = directory / "two-universes.toml"
    path.write_text(first + "\n" + second)
    assert cm.load(path).universes == (1, 2)
    return path


def frame_cost_us(map_path: Path, *, frames: int = 4000, rate: float = 10.0, fps: float = 40.0) -> float:
    """CPU microseconds per frame of the DMX sink (render + send of both universes), in a loop in this process:
    what a frame costs with warm caches, free of the scheduler's noise (the daemon runs above include it)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from dmx_helpers import reading

    from mer_live.outputs.dmx.sender import Transport
    from mer_live.outputs.dmx.sink import DmxSink

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    now = [0.0]
    sink = DmxSink(channel_map=cm.load(map_path), start=False, clock=lambda: now[0],
                   transport_factory=lambda u: Transport(protocol="artnet", universes=u, host="127.0.0.1", port=receiver.getsockname()[1]))
    every = max(1, round(fps / rate))
    start = time.thread_time()
    for index in range(frames):
        now[0] = index / fps
        if index % every == 0:
            sink.process(reading=reading(emotion={"energy": (index % 97) / 97, "valence": (index % 53) / 53}))
        sink.frames.tick(now[0], 1.0 / fps)
    cost = (time.thread_time() - start) / frames * 1e6
    sink.close()
    receiver.close()
    return cost


def run_once(*, input_path: Path, rate: float, seconds: float, osc_port: int, dmx: list[str]) -> dict:
    command = [sys.executable, "-m", "mer_live", "--input", str(input_path), "--rate", str(rate), "--threads", "1",
               "--osc", f"127.0.0.1:{osc_port}", "--no-control", *dmx]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(WARM_UP_S)
    if child.poll() is not None:
        raise RuntimeError(f"daemon failed: {child.stderr.read()[-2000:]}")
    cpu_start, wall_start = cpu_seconds(pid=child.pid), time.monotonic()
    time.sleep(seconds)
    cpu_end, wall_end = cpu_seconds(pid=child.pid), time.monotonic()
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=STOP_TIMEOUT_S)
    if child.returncode != 0:
        raise RuntimeError(f"daemon failed ({child.returncode}): {stderr[-2000:]}")
    timing = STOP_LINE.search(stderr)
    clock = FRAME_CLOCK_LINE.search(stderr)
    frames = FRAMES_LINE.search(stderr)
    if timing is None or (dmx and (clock is None or frames is None)):
        raise RuntimeError(f"no timing line in the daemon's log: {stderr[-2000:]}")
    return {
        "dmx": bool(dmx),
        "cpu_share_of_one_core": (cpu_end - cpu_start) / (wall_end - wall_start),
        "compute_p50_ms": float(timing.group(1)),
        "compute_p99_ms": float(timing.group(2)),
        **({"frame_clock_share_of_one_core": float(clock.group(1)) / 100.0, "frames_sent": int(frames.group(1)),
            "frames_failed": int(frames.group(2))} if dmx else {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured wall time per run")
    parser.add_argument("--repeats", type=int, default=3, help="without/with pairs")
    parser.add_argument("--rate", type=float, default=10.0, help="analysis updates per second")
    parser.add_argument("--fps", type=float, default=40.0, help="DMX frames per second")
    parser.add_argument("--protocol", choices=("artnet", "sacn"), default="artnet")
    parser.add_argument("--input", type=Path, help="audio file (default: the demo piece)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as osc, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dmx_socket:
        osc.bind(("127.0.0.1", 0))
        dmx_socket.bind(("127.0.0.1", 0))  # a receiver that never reads
        directory = Path(temp)
        input_path = args.input or write_input(directory=directory, seconds=WARM_UP_S + args.seconds)
        map_path = two_universe_map(directory)
        per_frame_us = frame_cost_us(map_path, rate=args.rate, fps=args.fps)
        print(json.dumps({"frame_cost_us_warm": per_frame_us, "share_at_fps": per_frame_us * args.fps / 1e6}), flush=True)
        dmx = ["--dmx", str(map_path), "--dmx-protocol", args.protocol, "--dmx-fps", str(args.fps)]
        if args.protocol == "artnet":
            config = directory / "dmx.toml"
            config.write_text(f'[dmx]\nport = {dmx_socket.getsockname()[1]}\n')
            dmx += ["--dmx-host", "127.0.0.1", "--config", str(config)]
        else:
            config = directory / "dmx.toml"
            config.write_text("[dmx]\nttl = 0\n")
            dmx += ["--config", str(config)]
        runs = []
        for repeat in range(args.repeats):
            for with_dmx in (False, True):
                result = run_once(input_path=input_path, rate=args.rate, seconds=args.seconds, osc_port=osc.getsockname()[1],
                                  dmx=dmx if with_dmx else [])
                result["repeat"] = repeat
                runs.append(result)
                print(json.dumps(result), flush=True)
    without = [r for r in runs if not r["dmx"]]
    with_ = [r for r in runs if r["dmx"]]
    mean = lambda rs, key: float(np.mean([r[key] for r in rs]))  # noqa: E731
    summary = {
        "cpu_without": mean(without, "cpu_share_of_one_core"),
        "cpu_with": mean(with_, "cpu_share_of_one_core"),
        "cpu_added_by_dmx": mean(with_, "cpu_share_of_one_core") - mean(without, "cpu_share_of_one_core"),
        "frame_clock_share": mean(with_, "frame_clock_share_of_one_core"),
        "p99_ms_without": mean(without, "compute_p99_ms"),
        "p99_ms_with": mean(with_, "compute_p99_ms"),
        "p99_ratio_with_to_without": mean(with_, "compute_p99_ms") / mean(without, "compute_p99_ms"),
        "p50_ms_without": mean(without, "compute_p50_ms"),
        "p50_ms_with": mean(with_, "compute_p50_ms"),
        "frame_cost_us_warm": per_frame_us,
        "frame_cost_share_at_fps_warm": per_frame_us * args.fps / 1e6,
        "goal_core": GOAL_CORE,
    }
    print(json.dumps(summary, indent=2))
    write(report(settings={"rate_hz": args.rate, "fps": args.fps, "protocol": args.protocol, "universes": 2,
                           "seconds": args.seconds, "repeats": args.repeats}, summary=summary, runs=runs), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
