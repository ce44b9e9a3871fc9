"""The receiver tests' one helper module: a contract-following OSC sender, real receivers, and the daemon.

* The sender builds exactly the packets of the OSC contract (docs/guide/osc.md) with python-osc, so the
  shipped patches can be checked value by value.
* Real receivers run as their own processes: ``oscdump`` (:class:`OscDump`), a printing Pd patch
  (:class:`PdReceiver`), the shipped Pd patch (:class:`PdProcess`) and sclang (:class:`SclangProcess`).
  Readiness is established by sending probe messages until one is seen, so no test depends on a sleep.
* :func:`check_osc_run` checks a received run against the OSC contract: addresses, type tags, counts,
  ranges and the explanation identity; :class:`DaemonProcess` runs the real daemon.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from mer_live.core import labels
from mer_live.core.labels import EMOTIONS, MID_LEVELS

STOP_TIMEOUT_S = 5.0


def stop_process(*, process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``STOP_TIMEOUT_S``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = PROJECT_ROOT / "mer_live" / "examples"  # package data: mer-live examples DIR copies them out
PD_PATCH = EXAMPLES / "puredata" / "mer-live.pd"
SC_SCRIPT = EXAMPLES / "supercollider" / "mer-live.scd"
MAX_PATCH = EXAMPLES / "maxmsp" / "mer-live.maxpat"
STATES = ("warming", "running", "silent", "no-input")
LEVEL_FLOOR_DBFS = -120.0
PRINT_PATTERN = re.compile(r"^(mer\.[a-z_.]+): (.*)$")


@dataclass
class Frame:
    """One update's worth of values, in sent units."""

    emotion: np.ndarray  # (8,)
    mid: np.ndarray  # (7,)
    explain: np.ndarray  # (8, 7)
    bias: np.ndarray  # (8,)
    raw_emotion: np.ndarray
    raw_mid: np.ndarray
    state: str = "running"
    level: float = -20.0
    overflows: int = 0
    updates: int = 1


def distinct_frame(*, updates: int = 1, state: str = "running") -> Frame:
    """A frame whose 15 values are all different, so a mis-routed value is caught."""
    emotion = np.round(np.linspace(0.05, 0.75, len(EMOTIONS)), 4)
    mid = np.round(np.linspace(0.1, 0.95, len(MID_LEVELS)), 4)
    explain = np.round(np.arange(56).reshape(8, 7) / 100.0 - 0.2, 4)
    bias = np.round(emotion - explain.sum(axis=1), 4)
    return Frame(
        emotion=emotion,
        mid=mid,
        explain=explain,
        bias=bias,
        raw_emotion=np.round(emotion[::-1].copy(), 4),
        raw_mid=np.round(mid[::-1].copy(), 4),
        state=state,
        level=-23.5,
        overflows=3,
        updates=updates,
    )


def _message(address: str, *args: object):
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build()


def contract_messages(*, frame: Frame, prefix: str = "/mer") -> list:
    """The messages of one update, in the order of the contract."""
    floats = lambda values: [float(v) for v in values]  # noqa: E731 - local shorthand
    messages = [
        _message(f"{prefix}/status", frame.state, float(frame.level), int(frame.overflows), int(frame.updates)),
        _message(f"{prefix}/emotion", *floats(frame.emotion)),
        _message(f"{prefix}/mid", *floats(frame.mid)),
    ]
    messages += [_message(f"{prefix}/emotion/{name}", float(v)) for name, v in zip(EMOTIONS, frame.emotion)]
    messages += [_message(f"{prefix}/mid/{name}", float(v)) for name, v in zip(MID_LEVELS, frame.mid)]
    messages += [_message(f"{prefix}/explain/{name}", *floats(row)) for name, row in zip(EMOTIONS, frame.explain)]
    messages.append(_message(f"{prefix}/explain/bias", *floats(frame.bias)))
    messages.append(_message(f"{prefix}/raw/emotion", *floats(frame.raw_emotion)))
    messages.append(_message(f"{prefix}/raw/mid", *floats(frame.raw_mid)))
    return messages


def contract_datagrams(*, frame: Frame, prefix: str = "/mer", bundle: bool = True) -> list[bytes]:
    """One bundle (immediate timetag) or the plain messages of one update."""
    messages = contract_messages(frame=frame, prefix=prefix)
    if not bundle:
        return [message.dgram for message in messages]
    builder = OscBundleBuilder(IMMEDIATELY)
    for message in messages:
        builder.add_content(message)
    return [builder.build().dgram]


def send_datagrams(*, datagrams: list[bytes], port: int, host: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for datagram in datagrams:
            sender.sendto(datagram, (host, port))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LineCollector:
    """Reads a process's stream on a thread; lines are kept and can be waited for."""

    def __init__(self, *, stream) -> None:
        self.lines: list[str] = []
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            with self._condition:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._condition.notify_all()
        stream.close()

    def wait_for(self, *, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._condition:
            while not predicate(self.lines):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def wait_quiet(self, *, quiet_s: float = 0.5, timeout: float = 20.0) -> None:
        """Wait until no new line has arrived for ``quiet_s`` (the receiver has drained its input)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while time.monotonic() < deadline:
                count = len(self.lines)
                self._condition.wait(quiet_s)
                if len(self.lines) == count:
                    return

    def snapshot(self) -> list[str]:
        with self._condition:
            return list(self.lines)


# -- Pure Data -----------------------------------------------------------------------------

PD_PRINTED = (
    [f"mer.emotion.{name}" for name in EMOTIONS]
    + [f"mer.mid.{name}" for name in MID_LEVELS]
    + ["mer.emotion.all", "mer.mid.all"]
    + [f"mer.status.{name}" for name in ("state", "level", "overflows", "updates")]
    + [f"mer.explain.{name}" for name in (*EMOTIONS, "bias")]
    + ["mer.raw.emotion", "mer.raw.mid", "mer.cutoff"]
)


def write_pd_wrapper(*, directory: Path) -> Path:
    """A wrapper patch that prints every value the shipped patch publishes (``[r name]``)."""
    lines = ["#N canvas 0 50 600 400 10;"]
    connects = []
    for index, name in enumerate(PD_PRINTED):
        lines.append(f"#X obj 10 {10 + index * 20} r {name};")
        lines.append(f"#X obj 250 {10 + index * 20} print {name};")
        connects.append(f"#X connect {2 * index} 0 {2 * index + 1} 0;")
    path = directory / "print-wrapper.pd"
    path.write_text("\n".join(lines + connects) + "\n")
    return path


def parse_pd_value(text: str) -> list[float | str]:
    """``symbol running`` -> ['running']; ``0.1 0.2`` -> [0.1, 0.2]."""
    parts = text.split()
    if parts and parts[0] == "symbol":
        return parts[1:]
    return [float(part) for part in parts]


class PdProcess:
    """``pd -nogui`` running the shipped patch plus the print wrapper, listening on ``port``."""

    def __init__(self, *, port: int, directory: Path, patch: Path = PD_PATCH, sends: tuple[str, ...] = ()) -> None:
        """``sends``: more messages for Pd's ``-send``, run in order after the patches load."""
        wrapper = write_pd_wrapper(directory=directory)
        extra = [argument for message in sends for argument in ("-send", message)]
        self.port = port
        self.process = subprocess.Popen(
            ["pd", "-nogui", "-nosound", "-nomidi", "-stderr", "-open", str(patch), "-open", str(wrapper),
             "-send", f"mer.port {port}", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.output = LineCollector(stream=self.process.stderr)

    def wait_listening(self, *, timeout: float = 10.0) -> None:
        """Send probe status messages until Pd prints one back (it listens, and routes)."""
        probe = _message("/mer/status", "probe", -120.0, 0, 0).dgram
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            send_datagrams(datagrams=[probe], port=self.port)
            if self.output.wait_for(predicate=lambda lines: "mer.status.state: symbol probe" in lines, timeout=0.1):
                return
            if self.process.poll() is not None:
                break
        raise AssertionError("pd never received the probe:\n" + "\n".join(self.output.snapshot()))

    def values(self) -> dict[str, list[list[float | str]]]:
        """Everything printed so far: name -> list of printed values, in order."""
        found: dict[str, list[list[float | str]]] = {}
        for line in self.output.snapshot():
            match = PRINT_PATTERN.match(line)
            if match:
                found.setdefault(match.group(1), []).append(parse_pd_value(match.group(2)))
        return found

    def close(self) -> None:
        stop_process(process=self.process)


# -- SuperCollider -------------------------------------------------------------------------


def sclang_environment(*, home: Path) -> dict[str, str]:
    """sclang headless (also as root): offscreen Qt, no web-engine sandbox, a private HOME."""
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        QTWEBENGINE_DISABLE_SANDBOX="1",
        HOME=str(home),
        XDG_RUNTIME_DIR=str(runtime),
        XDG_CONFIG_HOME=str(home / ".config"),
    )
    return env


def mer_live_command() -> list[str]:
    """The installed ``mer-live`` script, or the module when the script is not on PATH."""
    script = shutil.which("mer-live")
    return [script] if script else [sys.executable, "-m", "mer_live"]


SC_HARNESS = r"""
~merBootServer = false;
thisProcess.interpreter.executeFile(%s);
OSCdef(\merHarnessDump, {
    var mer = ~mer;
    var line = { |words| ("MERDUMP " ++ words.collect(_.asString).join(" ")).postln };
    line.([\received] ++ [\emotion, \mid, \explain, \status].collect { |k| [k, mer[\received][k]] }.flatten);
    line.([\emotion] ++ mer[\emotionNames].collect { |n| mer[\emotion][n] });
    line.([\mid] ++ mer[\midNames].collect { |n| mer[\mid][n] });
    mer[\explain].keysValuesDo { |e, d| line.([\explain, e] ++ mer[\midNames].collect { |n| d[n] }) };
    line.([\bias] ++ mer[\emotionNames].collect { |n| mer[\bias][n] });
    line.([\status, mer[\status][\state], mer[\status][\level], mer[\status][\overflows], mer[\status][\updates]]);
    line.([\params] ++ [\amp, \notesPerSecond, \cutoff, \scale, \octave].collect { |k| [k, mer[\params][k]] }.flatten);
    line.([\synthdef, SynthDescLib.global[\merNote].notNil]);
    "MERDUMP END".postln;
    0.exit;
}, '/merharness/dump');
"MERHARNESS READY".postln;
"""
SC_PORT_PATTERN = re.compile(r"mer-live: listening for /mer/\* on port (\d+)")


class SclangProcess:
    """sclang running the shipped .scd (through a harness that can dump ``~mer`` and exit)."""

    def __init__(
        self,
        *,
        directory: Path,
        script: Path = SC_SCRIPT,
        harness_text: str = SC_HARNESS,
        ready: str = "MERHARNESS READY",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """``harness_text``: sclang code with one ``%s`` for the quoted script path; it must post
        ``ready`` once it is listening."""
        harness = directory / "harness.scd"
        harness.write_text(harness_text % f'"{script}"')
        home = directory / "home"
        home.mkdir(exist_ok=True)
        self.ready = ready
        self.process = subprocess.Popen(
            ["sclang", str(harness)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**sclang_environment(home=home), **(extra_env or {})},
            cwd=directory,
        )
        self.output = LineCollector(stream=self.process.stdout)
        self.port = 0

    def wait_ready(self, *, timeout: float = 60.0) -> int:
        """Wait for the harness; returns the port sclang printed (57120, or 57121... when busy)."""
        if not self.output.wait_for(predicate=lambda lines: self.ready in lines, timeout=timeout):
            raise AssertionError("sclang did not start:\n" + "\n".join(self.output.snapshot()[-40:]))
        ports = [SC_PORT_PATTERN.search(line) for line in self.output.snapshot()]
        (port,) = [int(match.group(1)) for match in ports if match]
        self.port = port
        return port

    def dump(self, *, timeout: float = 10.0) -> dict[str, list[str]]:
        """Ask the harness for ``~mer``; returns ``{first word: the rest}`` per MERDUMP line."""
        builder = OscMessageBuilder(address="/merharness/dump")
        send_datagrams(datagrams=[builder.build().dgram], port=self.port)
        if not self.output.wait_for(predicate=lambda lines: "MERDUMP END" in lines, timeout=timeout):
            raise AssertionError("no dump from sclang:\n" + "\n".join(self.output.snapshot()[-40:]))
        dumped: dict[str, list[str]] = {}
        for line in self.output.snapshot():
            if line.startswith("MERDUMP ") and line != "MERDUMP END":
                words = line.split()[1:]
                key = words[0] if words[0] != "explain" else f"explain.{words[1]}"
                dumped[key] = words[1:] if words[0] != "explain" else words[2:]
        return dumped

    def close(self) -> None:
        stop_process(process=self.process)


# -- the real daemon -----------------------------------------------------------------------

DAEMON_RUN_TIMEOUT_S = 120.0


def clip_path(*, shared_data: Path) -> Path:
    """A real Soundtracks clip (the first one, sorted)."""
    clips = sorted((shared_data / "soundtracks" / "audio").glob("*.mp3"))
    assert clips, f"no clips under {shared_data}"
    return clips[0]


class DaemonProcess:
    """``mer-live`` with the given arguments; stderr is collected line by line."""

    def __init__(self, *, args: list[str], cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [*mer_live_command(), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )
        self.output = LineCollector(stream=self.process.stderr)

    def wait(self, *, timeout: float = DAEMON_RUN_TIMEOUT_S) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise

    def stop(self, *, timeout: float = 10.0) -> int:
        """SIGTERM, then wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.wait(timeout=timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def stderr_text(self) -> str:
        return "\n".join(self.output.snapshot())


# ------------------------------------------------------------- receivers of the daemon's output

READY_TIMEOUT_S = 15.0
PROBE_INTERVAL_S = 0.1
IDENTITY_TOLERANCE = 1e-4  # oscdump prints 6 decimals; Pd prints 6 significant digits


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


PD_PRINT_PATCH = """#N canvas 0 0 450 300 12;
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
        self._patch.write_text(PD_PRINT_PATCH.format(port=self.port))
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


SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux; Python's socket module lacks the name


class OscReceiver:
    """A real UDP receiver (a big socket buffer, read on a thread) that parses OSC with python-osc and
    keeps ``(arrival time, address, args)`` for every message."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)  # beyond rmem_max (root)
        except OSError:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self.messages: list[tuple[float, str, list]] = []
        self.datagrams = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self.socket.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            parsed = [(now, t.message.address, list(t.message.params)) for t in OscPacket(datagram).messages]
            with self._lock:
                self.datagrams += 1
                self.messages.extend(parsed)

    def statuses(self) -> list[tuple[float, list]]:
        with self._lock:
            return [(when, args) for when, address, args in self.messages if address == "/mer/status"]

    def update_times(self) -> list[float]:
        """Arrival times of the bundles that carry values (one per update; the first update of a
        run, before the first complete spectrogram frame, has none)."""
        with self._lock:
            return [when for when, address, _ in self.messages if address == "/mer/emotion"]

    def update_numbers(self) -> set[int]:
        """The update counts seen in ``/mer/status`` (heartbeats repeat the last one)."""
        return {int(args[3]) for _, args in self.statuses()}

    def wait_for(self, predicate, *, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    def since(self, start: float) -> list[tuple[float, str, list]]:
        """Every message that arrived at or after ``start`` (``time.monotonic()``)."""
        with self._lock:
            return [entry for entry in self.messages if entry[0] >= start]

    def wait_for_messages(self, *, address: str, count: int, start: float, timeout: float) -> list:
        """At least ``count`` messages to ``address`` since ``start``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [entry for entry in self.since(start) if entry[1] == address]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{address}: fewer than {count} since the mark")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.socket.close()
