"""Real OSC receivers for the daemon tests: ``oscdump`` (liblo-tools) and headless Pure Data.

Each receiver runs as its own process; readiness is established by sending probe messages until one
is seen, so no test depends on a sleep. :func:`check_osc_run` checks a received run against the OSC
contract (docs/OSC.md): addresses, type tags, counts, ranges and the explanation identity.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mer_live import labels
from osc_receivers import STOP_TIMEOUT_S, stop_process

READY_TIMEOUT_S = 15.0
PROBE_INTERVAL_S = 0.1
IDENTITY_TOLERANCE = 1e-4  # oscdump prints 6 decimals; Pd prints 6 significant digits
STATES = ("warming", "running", "silent", "no-input")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _probe(*, port: int, address: str) -> None:
    from pythonosc.osc_message_builder import OscMessageBuilder

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(OscMessageBuilder(address=address).build().dgram, ("127.0.0.1", port))


@dataclass
class Message:
    address: str
    types: str
    args: list


class _LineProcess:
    """A child process whose output lines are collected by a thread."""

    def __init__(self, *, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_ready(self, *, port: int, probe_address: str, marker: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if any(marker in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            _probe(port=port, address=probe_address)
            time.sleep(PROBE_INTERVAL_S)
        self.stop()
        raise RuntimeError(f"receiver did not come up: {self.lines[-10:]}")

    def stop(self) -> None:
        stop_process(process=self.process)
        self._reader.join(STOP_TIMEOUT_S)


class OscDump:
    """``oscdump -L PORT`` on a free port."""

    def __init__(self) -> None:
        self.port = free_udp_port()
        self._child: _LineProcess | None = None

    def __enter__(self) -> "OscDump":
        self._child = _LineProcess(command=["oscdump", "-L", str(self.port)])
        self._child.wait_ready(port=self.port, probe_address="/probe/ready", marker="/probe/ready")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._child.stop()

    def messages(self, *, settle_s: float = 0.3) -> list[Message]:
        time.sleep(settle_s)
        out = []
        for line in list(self._child.lines):
            parts = line.split(" ", 3)
            if len(parts) < 3 or not parts[1].startswith("/") or parts[1].startswith("/probe"):
                continue
            types = parts[2]
            raw = shlex.split(parts[3]) if len(parts) > 3 else []
            args = [_convert(tag, value) for tag, value in zip(types, raw)]
            assert len(args) == len(types), line
            out.append(Message(address=parts[1], types=types, args=args))
        return out


def _convert(tag: str, value: str):
    if tag == "f" or tag == "d":
        return float(value)
    if tag in "ih":
        return int(value)
    return value


PD_PATCH = """#N canvas 0 0 450 300 12;
#X obj 10 10 netreceive -u -b {port};
#X obj 10 40 oscparse;
#X obj 10 70 list trim;
#X obj 10 100 print mer;
#X connect 0 0 1 0;
#X connect 1 0 2 0;
#X connect 2 0 3 0;
"""


class PdReceiver:
    """Headless Pure Data: ``[netreceive -u -b PORT] -> [oscparse] -> [list trim] -> [print mer]``."""

    def __init__(self, *, directory: Path) -> None:
        self.port = free_udp_port()
        self._patch = directory / "receive.pd"
        self._patch.write_text(PD_PATCH.format(port=self.port))
        self._child: _LineProcess | None = None

    def __enter__(self) -> "PdReceiver":
        self._child = _LineProcess(command=["pd", "-nogui", "-nosound", "-nomidi", "-stderr", "-open", str(self._patch)])
        self._child.wait_ready(port=self.port, probe_address="/probe/ready", marker="mer: probe ready")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._child.stop()

    def messages(self, *, settle_s: float = 0.5) -> list[Message]:
        """Pd prints ``mer: mer emotion 0.37 ...``: address components as symbols, then the atoms."""
        time.sleep(settle_s)
        out = []
        for line in list(self._child.lines):
            if not line.startswith("mer: ") or line.startswith("mer: probe"):
                continue
            atoms = line[len("mer: ") :].split()
            path: list[str] = []
            while atoms and not _is_number(atoms[0]) and atoms[0] not in STATES:
                path.append(atoms.pop(0))
            out.append(Message(address="/" + "/".join(path), types="", args=[float(a) if _is_number(a) else a for a in atoms]))
        return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def group_bundles(*, messages: list[Message], prefix: str) -> list[list[Message]]:
    """Split the received sequence at each ``P/status`` (the first message of every bundle)."""
    groups: list[list[Message]] = []
    for message in messages:
        if message.address == f"{prefix}/status":
            groups.append([message])
        else:
            assert groups, f"{message.address} arrived before any status"
            groups[-1].append(message)
    return groups


def expected_layout(*, prefix: str) -> list[tuple[str, int]]:
    """Every address of an update, in order, with its argument count (all floats)."""
    return (
        [(f"{prefix}/emotion", labels.NUM_EMOTIONS), (f"{prefix}/mid", labels.NUM_MID_LEVELS)]
        + [(f"{prefix}/emotion/{n}", 1) for n in labels.EMOTIONS]
        + [(f"{prefix}/mid/{n}", 1) for n in labels.MID_LEVELS]
        + [(f"{prefix}/explain/{n}", labels.NUM_MID_LEVELS) for n in labels.EMOTIONS]
        + [(f"{prefix}/explain/bias", labels.NUM_EMOTIONS)]
        + [(f"{prefix}/raw/emotion", labels.NUM_EMOTIONS), (f"{prefix}/raw/mid", labels.NUM_MID_LEVELS)]
    )


def check_osc_run(*, messages: list[Message], prefix: str, typed: bool = True) -> int:
    """Assert the contract on a whole run; returns the number of updates that carried values."""
    groups = group_bundles(messages=messages, prefix=prefix)
    assert groups, "no OSC arrived"
    layout = expected_layout(prefix=prefix)
    with_values = 0
    last_count = 0
    for group in groups:
        status = group[0]
        if typed:
            assert status.types == "sfiii", status
        state, level, overflows, count, dropped = status.args
        assert state in STATES and -120.0 <= level <= 0.0 and overflows >= 0 and count >= last_count and dropped >= 0
        last_count = count
        if len(group) == 1:
            continue
        with_values += 1
        assert [(m.address, len(m.args)) for m in group[1:]] == layout
        if typed:
            assert all(m.types == "f" * len(m.args) for m in group[1:])
        values = {m.address: m.args for m in group[1:]}
        emotion, mid = values[f"{prefix}/emotion"], values[f"{prefix}/mid"]
        for name in ("emotion", "mid", "raw/emotion", "raw/mid"):
            assert all(0.0 <= v <= 1.0 for v in values[f"{prefix}/{name}"]), name
        for index, name in enumerate(labels.EMOTIONS):
            assert abs(values[f"{prefix}/emotion/{name}"][0] - emotion[index]) < IDENTITY_TOLERANCE
            total = values[f"{prefix}/explain/bias"][index] + sum(values[f"{prefix}/explain/{name}"])
            assert abs(min(max(total, 0.0), 1.0) - emotion[index]) < IDENTITY_TOLERANCE, (name, total, emotion[index])
        for index, name in enumerate(labels.MID_LEVELS):
            assert abs(values[f"{prefix}/mid/{name}"][0] - mid[index]) < IDENTITY_TOLERANCE
    return with_values
