"""A real local Ray cluster for tests and benchmarks: a head and worker nodes started with ``ray start``.

Each node is its own ``ray start --block`` process group with its own temp dir, 127.0.0.1 as its node
address, a CPU limit and a small object store, and token authentication with a token of its own. A node
is stopped by killing its process group (never ``ray stop``, which would stop every Ray on the machine).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
OBJECT_STORE_BYTES = 200_000_000
START_TIMEOUT_S = 90.0
STARTED_MARK = "Ray runtime started"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _ray_command() -> list[str]:
    return [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; sys.exit(main())"]


class LocalRayCluster:
    """``nodes`` Ray nodes (the first is the head) of ``cpus_per_node`` CPUs each, under ``root``."""

    def __init__(self, root: Path, *, nodes: int, cpus_per_node: int = 1) -> None:
        self.root = root
        self.cpus_per_node = cpus_per_node
        self.port = free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        token = root / "auth_token"
        root.mkdir(parents=True, exist_ok=True)
        token.write_text(secrets.token_hex(32))
        self.env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
                        RAY_USAGE_STATS_ENABLED="0", RAY_ADDRESS="")
        self.env.pop("RAY_ADDRESS")
        self.nodes: list[subprocess.Popen] = []
        for index in range(nodes):
            self.add_node(head=index == 0)

    def add_node(self, *, head: bool) -> subprocess.Popen:
        name = "head" if head else f"node{len(self.nodes)}"
        log = (self.root / f"{name}.log").open("w")
        command = _ray_command() + [
            "start", "--block", "--node-ip-address", LOOPBACK, "--num-cpus", str(self.cpus_per_node),
            "--object-store-memory", str(OBJECT_STORE_BYTES), "--temp-dir", str(self.root / name),
            "--disable-usage-stats", "--dashboard-agent-listen-port", str(free_port()),
            "--metrics-export-port", str(free_port()),
        ]
        command += (["--head", "--port", str(self.port), "--include-dashboard", "false"] if head
                    else ["--address", self.address])
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                   start_new_session=True)
        self.nodes.append(process)
        deadline = time.monotonic() + START_TIMEOUT_S
        while STARTED_MARK not in (self.root / f"{name}.log").read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ray node {name} did not start:\n{(self.root / f'{name}.log').read_text()}")
            time.sleep(0.2)
        return process

    def kill_node(self, process: subprocess.Popen) -> None:
        """SIGKILL a node: its ``ray start`` and every process under it (raylet, object store, workers;
        Ray puts its workers in process groups of their own, so the tree is walked)."""
        for pid in [process.pid, *descendants(process.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=30)

    def stop(self) -> None:
        """Stop every node (SIGKILL: the test is over; nothing of value is left in them)."""
        for process in reversed(self.nodes):
            self.kill_node(process)
        self.nodes = []

    def __enter__(self) -> "LocalRayCluster":
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
