"""Helpers for the receiver tests: a contract-following OSC sender, and real Pd / sclang processes.

The sender builds exactly the packets of the OSC contract (docs/OSC.md) with python-osc, so the
shipped patches can be checked value by value; the end-to-end tests use the real daemon instead.
"""

from __future__ import annotations

import os
import re
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

from mer_live.labels import EMOTIONS, MID_LEVELS

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
PD_PATCH = PROJECT_ROOT / "examples" / "puredata" / "mer-live.pd"
SC_SCRIPT = PROJECT_ROOT / "examples" / "supercollider" / "mer-live.scd"
MAX_PATCH = PROJECT_ROOT / "examples" / "maxmsp" / "mer-live.maxpat"
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
