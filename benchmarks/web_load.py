"""Load on the web output: does a crowd of browsers (or one stuck browser) delay the analysis?

Runs the real daemon (``python -m mer_live``) on the demo piece looped to ``--seconds`` of audio, paced in
real time (as a sound card would be), with ``--web 127.0.0.1:PORT``, alternately:

* ``none``: the web output on, no client;
* ``load``: ``--clients`` WebSocket clients on the dashboard's ``/ws`` (default 50): all but one read
  every frame (aiohttp clients in this process), and one completes the handshake and then never reads
  (a raw socket with a 4 KiB receive buffer), so the server's sends to it back up.

``--repeats`` pairs, interleaved (none, load, none, load, ...), so that the machine's other load falls on
both alike. Per run: the worker's per-update compute time (the daemon's exit line, p50 and p99 over the
run), the daemon's resident memory (``/proc/PID/status`` VmRSS, sampled every second; the peak, and the
growth from the first to the last third of the run), the same for the web process (the daemon's child
that serves the clients, where a stuck client's backlog would pile up), the frames each reading client got, and whether the
stuck client was closed by the server, and the daemon's CPU share (user + system seconds of the daemon
process itself, not the web process, over the run's wall time, ``/proc/PID/stat``) and the web process's. Result: p99 of ``load``
as a ratio to ``none`` (medians over the repeats, and per pair), goal <= 1.10; the daemon's CPU share under
load as a ratio to none (what the clients cost the analysis process); the memory growth under load, goal:
bounded (no growth with the run's length).
The load on the machine (``os.getloadavg``) is recorded before and after. Run:

    nice -n 10 python benchmarks/web_load.py --seconds 120 --repeats 3 --out benchmarks/web_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

STOP_LINE = re.compile(r"compute per update p50 ([0-9.]+) ms, p99 ([0-9.]+) ms")
GOAL_P99_RATIO = 1.10
RATE_HZ = 10.0  # --rate
WARM_UP_S = 3.0
SAMPLE_S = 1.0
STUCK_RCVBUF = 4096


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_input(*, path: Path, seconds: float) -> None:
    import soundfile

    from mer_live.features.spectrogram import SAMPLE_RATE
    from mer_live.live import demo

    piece = demo.synthesise()
    repeats = int(np.ceil(seconds * SAMPLE_RATE / len(piece)))
    soundfile.write(path, np.tile(piece, repeats)[: int(seconds * SAMPLE_RATE)], SAMPLE_RATE)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (the web process among them)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def web_rss_kib(pid: int) -> int:
    """Resident memory of the daemon's child processes (the web process; --input starts no capture child)."""
    total = 0
    for child in children(pid):
        try:
            total += rss_kib(child)
        except OSError:
            pass
    return total


async def crowd(*, port: int, clients: int, stop: asyncio.Event, counts: list[int]) -> bool:
    """``clients - 1`` reading clients and one that never reads; returns whether the stuck one was closed."""
    import aiohttp

    stuck = socket.create_connection(("127.0.0.1", port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STUCK_RCVBUF)
    stuck.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )

    async def reader(index: int, session) -> None:
        async with session.ws_connect(f"ws://127.0.0.1:{port}/ws", max_msg_size=0) as ws:
            while not stop.is_set():
                try:
                    message = await ws.receive(timeout=1.0)
                except asyncio.TimeoutError:
                    continue
                if message.type != aiohttp.WSMsgType.TEXT:
                    return
                if message.data.startswith('{"type":"frame"'):
                    counts[index] += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(reader(index, session) for index in range(clients - 1)))
    # closed by the server: a read now returns b"" (EOF) or fails, after the buffered bytes
    stuck.setblocking(False)
    closed = False
    try:
        while True:
            data = stuck.recv(1 << 20)
            if not data:
                closed = True
                break
    except BlockingIOError:
        closed = False
    except OSError:
        closed = True
    stuck.close()
    return closed


def one_run(*, condition: str, wav: Path, clients: int, seconds: float, rate: float) -> dict:
    port = free_port()
    command = [sys.executable, "-m", "mer_live", "--input", str(wav), "--rate", str(rate), "--no-osc", "--no-control",
               "--web", f"127.0.0.1:{port}"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(child.stderr), daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(WARM_UP_S)
    samples: list[int] = []
    web_samples: list[int] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set() and child.poll() is None:
            try:
                samples.append(rss_kib(child.pid))
                web_samples.append(web_rss_kib(child.pid))
            except OSError:
                return
            sampling.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    def web_cpu_s() -> float:
        return sum(cpu_s(pid) for pid in children(child.pid))

    cpu_start, web_start, wall_start = cpu_s(child.pid), web_cpu_s(), time.monotonic()
    cpu_end: list[float] = []

    def stop_cpu_clock() -> None:  # just before the end of the input: the daemon is still there
        time.sleep(max(0.0, seconds - WARM_UP_S - 2.0))
        try:
            cpu_end.extend([cpu_s(child.pid), time.monotonic(), web_cpu_s()])
        except OSError:
            pass

    clock = threading.Thread(target=stop_cpu_clock, daemon=True)
    clock.start()
    counts = [0] * max(0, clients - 1) if condition == "load" else []
    closed = None
    if condition == "load":
        async def drive() -> bool:
            stop = asyncio.Event()
            task = asyncio.ensure_future(crowd(port=port, clients=clients, stop=stop, counts=counts))
            while child.poll() is None:
                await asyncio.sleep(0.2)
            stop.set()
            return await task

        closed = asyncio.run(drive())
    child.wait(timeout=seconds + 60)
    sampling.set()
    sampler.join()
    clock.join()
    cpu_share = (cpu_end[0] - cpu_start) / (cpu_end[1] - wall_start) if cpu_end else None
    web_share = (cpu_end[2] - web_start) / (cpu_end[1] - wall_start) if cpu_end else None
    match = next((STOP_LINE.search(line) for line in lines if STOP_LINE.search(line)), None)
    third = max(1, len(samples) // 3)
    return {
        "condition": condition,
        "clients": clients if condition == "load" else 0,
        "exit_status": child.returncode,
        "compute_p50_ms": float(match.group(1)) if match else None,
        "compute_p99_ms": float(match.group(2)) if match else None,
        "daemon_cpu_share_of_one_core": round(cpu_share, 4) if cpu_share is not None else None,
        "web_process_cpu_share_of_one_core": round(web_share, 4) if web_share is not None else None,
        "rss_peak_mib": round(max(samples) / 1024, 1) if samples else None,
        "rss_growth_first_to_last_third_mib": round((np.mean(samples[-third:]) - np.mean(samples[:third])) / 1024, 2) if samples else None,
        "web_process_rss_peak_mib": round(max(web_samples) / 1024, 1) if web_samples else None,
        "web_process_rss_growth_first_to_last_third_mib": round((np.mean(web_samples[-third:]) - np.mean(web_samples[:third])) / 1024, 2) if web_samples else None,
        "frames_per_reading_client": {"min": min(counts), "max": max(counts)} if counts else None,
        "stuck_client_closed_by_server": closed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="audio per run (the demo piece looped)")
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs (none, load)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=RATE_HZ, help="updates per second")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    load_before = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "demo-looped.wav"
        write_input(path=wav, seconds=args.seconds)
        for repeat in range(args.repeats):
            for condition in ("none", "load"):
                run = one_run(condition=condition, wav=wav, clients=args.clients, seconds=args.seconds, rate=args.rate)
                run["repeat"] = repeat
                runs.append(run)
                print(json.dumps(run), flush=True)
    p99 = {c: float(np.median([r["compute_p99_ms"] for r in runs if r["condition"] == c])) for c in ("none", "load")}
    p50 = {c: float(np.median([r["compute_p50_ms"] for r in runs if r["condition"] == c])) for c in ("none", "load")}
    web_rss = {c: float(max(r["web_process_rss_peak_mib"] for r in runs if r["condition"] == c)) for c in ("none", "load")}
    web_cpu = {c: float(np.median([r["web_process_cpu_share_of_one_core"] for r in runs if r["condition"] == c])) for c in ("none", "load")}
    cpu = {c: float(np.median([r["daemon_cpu_share_of_one_core"] for r in runs if r["condition"] == c])) for c in ("none", "load")}
    pairs = [round(load["compute_p99_ms"] / none["compute_p99_ms"], 3) for none, load in zip(runs[0::2], runs[1::2])]
    ratio = p99["load"] / p99["none"]
    result = {
        "command": "python benchmarks/web_load.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "rate_hz": args.rate,
        "seconds_per_run": args.seconds,
        "median_compute_p50_ms": p50,
        "median_compute_p99_ms": p99,
        "p99_ratio_load_vs_none": round(ratio, 3),
        "p99_ratio_per_pair": pairs,
        "median_daemon_cpu_share_of_one_core": cpu,
        "daemon_cpu_ratio_load_vs_none": round(cpu["load"] / cpu["none"], 3),
        "web_process_rss_peak_mib": web_rss,
        "median_web_process_cpu_share_of_one_core": web_cpu,
        "within_goal": ratio <= GOAL_P99_RATIO,
        "goal": f"p99 with {args.clients} clients (one never reading) <= {GOAL_P99_RATIO:.2f} x p99 with none",
        "runs": runs,
    }
    print(f"p99 none {p99['none']:.2f} ms, load {p99['load']:.2f} ms: ratio {ratio:.3f} (goal <= {GOAL_P99_RATIO}); "
          f"per pair {pairs}; daemon CPU {cpu['none']:.3f} vs {cpu['load']:.3f} of a core")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
