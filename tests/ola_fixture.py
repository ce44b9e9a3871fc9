"""OLA's ``olad`` as a DMX receiver for the tests: headless, on loopback, in a temporary config folder,
with only its E1.31 and Art-Net plugins, on a free RPC port and no web server.

olad refuses to run as root, so as root it runs as OLA's own ``olad`` user (or ``nobody``). Its E1.31 and
Art-Net ports are fixed by the protocols (5568, 6454), so one olad at a time runs on this machine: a
lock file serialises the tests of parallel sessions. :meth:`Olad.receive` starts OLA's Python client
(:mod:`tests.ola_receiver`) and collects the frames olad passes on.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from osc_receivers import stop_process

OLA_DIST_PACKAGES = "/usr/lib/python3/dist-packages"  # Debian's ola-python
LOCK_PATH = Path(tempfile.gettempdir()) / "mer-live-olad.lock"
START_TIMEOUT_S = 15.0
ENABLED_PLUGINS = ("e131", "artnet")
OTHER_PLUGINS = (
    "dummy", "espnet", "ftdidmx", "gpio", "karate", "kinet", "milinst", "opendmx", "openpixelcontrol", "osc",
    "pathport", "renard", "sandnet", "shownet", "spi", "stageprofi", "uartdmx", "usbdmx", "usbserial",
)
PLUGIN_CONFIG = {
    "e131": {"enabled": "true", "ip": "127.0.0.1", "input_ports": "4", "output_ports": "0", "ignore_preview": "true"},
    "artnet": {"enabled": "true", "ip": "127.0.0.1", "use_loopback": "true", "net": "0", "subnet": "0", "output_ports": "0"},
}


def ola_available() -> str | None:
    """Why OLA cannot be used here (None when it can)."""
    if shutil.which("olad") is None:
        return "olad not installed (apt-get install ola ola-python)"
    if not (Path(OLA_DIST_PACKAGES) / "ola" / "OlaClient.py").exists():
        return "OLA's Python client not installed (apt-get install ola-python)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Frame:
    time_s: float
    universe: int
    data: bytes


class Receiver:
    """OLA's Python client patched to some universes; :attr:`frames` fills as olad passes DMX on."""

    def __init__(self, *, rpc_port: int, plugin: str, universes: list[int]) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), OLA_DIST_PACKAGES])))
        script = Path(__file__).with_name("ola_receiver.py")
        self._process = subprocess.Popen(
            [sys.executable, str(script), str(rpc_port), plugin, *map(str, universes)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        self.frames: list[Frame] = []
        self._ready = threading.Event()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self.error:
            self.close()
            raise RuntimeError(f"OLA receiver did not start: {self.error or self._process.stderr.read()[-500:]}")

    def _read(self) -> None:
        for line in self._process.stdout:
            record = json.loads(line)
            if "ready" in record:
                self._ready.set()
            elif "error" in record:
                self.error = record["error"]
                self._ready.set()
            else:
                self.frames.append(Frame(time_s=record["t"], universe=record["u"], data=bytes.fromhex(record["d"])))

    def wait_for(self, predicate, *, timeout_s: float = 5.0) -> Frame | None:
        """The first frame (from now on, among all received) that ``predicate`` accepts, or None."""
        deadline, seen = time.monotonic() + timeout_s, 0
        while time.monotonic() < deadline:
            frames = self.frames
            for frame in frames[seen:]:
                if predicate(frame):
                    return frame
            seen = len(frames)
            time.sleep(0.02)
        return None

    def close(self) -> None:
        stop_process(process=self._process)
        self._thread.join(2)


class Olad:
    """A headless olad (context manager); see the module docstring."""

    def __init__(self) -> None:
        self._lock = open(LOCK_PATH, "a+")  # noqa: SIM115 - held for the fixture's life
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self._dir = tempfile.mkdtemp(prefix="mer-live-olad-")
        os.chmod(self._dir, 0o777)
        for plugin in OTHER_PLUGINS:
            Path(self._dir, f"ola-{plugin}.conf").write_text("enabled = false\n")
        for plugin in ENABLED_PLUGINS:
            Path(self._dir, f"ola-{plugin}.conf").write_text("".join(f"{k} = {v}\n" for k, v in PLUGIN_CONFIG[plugin].items()))
        for path in Path(self._dir).iterdir():
            os.chmod(path, 0o666)
        self.rpc_port = _free_port()
        command = ["olad", "-c", self._dir, "-r", str(self.rpc_port), "--no-http", "--no-register-with-dns-sd", "-l", "3"]
        if os.geteuid() == 0:  # olad refuses root
            user = "olad" if _has_user("olad") else "nobody"
            entry = pwd.getpwnam(user)
            command = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", *command]
        self.log_path = Path(self._dir, "olad.log")
        self._log = open(self.log_path, "w")  # noqa: SIM115
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.close()
                raise RuntimeError(f"olad exited with {self._process.returncode}: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.rpc_port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.close()
            raise RuntimeError("olad did not open its RPC port")
        self._receivers: list[Receiver] = []

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return ""

    def receive(self, *, plugin: str, universes: list[int]) -> Receiver:
        receiver = Receiver(rpc_port=self.rpc_port, plugin=plugin, universes=universes)
        self._receivers.append(receiver)
        return receiver

    def close(self) -> None:
        for receiver in getattr(self, "_receivers", []):
            receiver.close()
        stop_process(process=self._process)
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

    def __enter__(self) -> Olad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
