"""Real-time pacing and a vanishing device, through a JACK dummy server.

``jackd -d dummy`` runs a JACK graph in real time with no sound card; a JACK-Client feeder plays a
sine into the daemon's PortAudio input ports. PortAudio's JACK host API is used in callback mode
(its blocking reads on JACK are broken in 19.6). Killing jackd makes the stream inactive: the daemon
must say ``no-input`` and still stop cleanly (closing a dead stream can hang, so the source closes it
from a thread with a timeout), and when a server of the same name comes back, capture again by itself,
in the same process: the PID, the update count, the stream time and the control port all carry on.

The servers are stopped with SIGTERM at the end: a SIGKILLed jackd leaves its slot in JACK's shared
registry (8 slots), which only a later server of the same name reclaims, so the test servers share
one name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from control_helpers import ControlClient, build_message
from osc_receivers import OscDump, free_udp_port, group_bundles

from mer_live.features import mel
from mer_live.model.emotion_model import default_model_path

JACK_RATE = 44100
JACK_PERIOD = 1024
SINE_HZ = 440.0
SINE_AMPLITUDE = 0.3
SINE_DBFS = 20 * np.log10(SINE_AMPLITUDE / np.sqrt(2))
START_TIMEOUT_S = 20.0
SERVER_NAME = "merlive-test"
STOP_TIMEOUT_S = 10.0
RECONNECT_TIMEOUT_S = 30.0  # a new capture process every 2 s until the device is back
WINDOW_S = mel.PATCH_SECONDS  # warming until the default model's (v2's) first 3 s patch is full

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("jackd") is None, reason="jackd (jackd2) is not installed"),
    pytest.mark.skipif(not default_model_path().is_file(), reason="no model file yet"),
]


class JackServer:
    """A private ``jackd -d dummy`` server (own name, so it cannot disturb anything else)."""

    def __init__(self) -> None:
        self.name = SERVER_NAME
        env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
        self.process = subprocess.Popen(
            ["jackd", "--no-realtime", "-n", self.name, "-d", "dummy", "-r", str(JACK_RATE), "-p", str(JACK_PERIOD)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def client(self, name: str):
        import jack

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                return jack.Client(name, servername=self.name, no_start_server=True)
            except jack.JackOpenError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.1)

    def kill(self) -> None:
        """The device vanishes: SIGKILL, no goodbye to the clients."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Clean up: SIGTERM, so that jackd frees its registry slot."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()


class SineFeeder:
    """A JACK client playing a sine into every non-system audio input that appears."""

    def __init__(self, *, server: JackServer) -> None:
        self.client = server.client("merfeeder")
        self.port = self.client.outports.register("out")
        self._phase = 0
        self._closed = False
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        t = (np.arange(frames) + self._phase) / JACK_RATE
        self.port.get_array()[:] = SINE_AMPLITUDE * np.sin(2 * np.pi * SINE_HZ * t)
        self._phase += frames

    def connect_new_inputs(self) -> int:
        connected = 0
        for port in self.client.get_ports(is_audio=True, is_input=True):
            if port.name.startswith("system:"):
                continue
            if self.port not in self.client.get_all_connections(port):
                self.client.connect(self.port, port)
            connected += 1
        return connected

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.client.deactivate()
            self.client.close()


def _rows(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split(",") for line in path.read_text().splitlines()[1:]]


class JackSession:
    """What both tests share: a JACK dummy server with a sine feeder, an ``oscdump`` receiver, and the
    daemon capturing the server's ``system`` device (channel 0), its stderr in ``log``. A context manager."""

    def __init__(self, *, tmp_path: Path, args: tuple[str, ...]) -> None:
        pytest.importorskip("jack")
        self._stack = contextlib.ExitStack()
        self.server = JackServer()
        self._stack.callback(lambda: self.server.stop())  # the current server (come_back replaces it)
        self.feeder = SineFeeder(server=self.server)
        self._stack.callback(lambda: self.feeder.close())
        self.dump = self._stack.enter_context(OscDump())
        self.log = tmp_path / "daemon.log"
        log_file = self._stack.enter_context(self.log.open("w"))
        env = dict(os.environ, JACK_DEFAULT_SERVER=self.server.name, JACK_NO_START_SERVER="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mer_live", "-d", "system", "--channel", "0", "--osc", f"127.0.0.1:{self.dump.port}", "-q", *args],
            env=env, stderr=log_file, text=True,
        )
        self._stack.callback(self._kill_daemon)

    def __enter__(self) -> JackSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _kill_daemon(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)

    def wait_for(self, condition, *, timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the daemon exited while waiting for {what}: {self.log.read_text()}"
            result = condition()
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; daemon log: {self.log.read_text()}")

    def connect(self) -> None:
        """Wait for the daemon's input ports and feed them the sine."""
        self.wait_for(lambda: self.feeder.connect_new_inputs(), timeout_s=RECONNECT_TIMEOUT_S, what="the daemon's ports")

    def statuses(self, *, since: int = 0) -> list[list]:
        """The ``/mer/status`` arguments ``[state, level, overflows, updates]`` of every bundle received."""
        return [g[0].args for g in group_bundles(messages=self.dump.messages(settle_s=0), prefix="/mer")[since:]]

    def vanish(self) -> None:
        """The device vanishes: the feeder goes, and the server is SIGKILLed."""
        self.feeder.close()
        self.server.kill()

    def come_back(self) -> None:
        """The device returns: a server of the same name, and the feeder again."""
        self.server = JackServer()
        self.feeder = SineFeeder(server=self.server)

    def stop_daemon(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(STOP_TIMEOUT_S + START_TIMEOUT_S)


def test_jack_capture_is_paced_in_real_time_and_survives_the_server_dying(tmp_path: Path) -> None:
    csv_path = tmp_path / "jack.csv"
    with JackSession(tmp_path=tmp_path, args=("--csv", str(csv_path), "--no-control")) as session:
        session.connect()
        connected_at = time.monotonic()
        session.wait_for(lambda: len(_rows(csv_path)) >= 16, timeout_s=START_TIMEOUT_S + 10, what="16 CSV rows")
        # real-time pacing: stream time advances like the wall clock
        rows = _rows(csv_path)
        stream = np.array([float(r[1]) for r in rows])
        wall = np.array([datetime.fromisoformat(r[0]).timestamp() for r in rows])
        np.testing.assert_allclose(np.diff(stream), 0.25, atol=1e-3)
        assert (wall[-1] - wall[4]) == pytest.approx(stream[-1] - stream[4], abs=0.2)
        assert time.monotonic() - connected_at > 2.0  # not faster than real time
        late = [r for r in rows if float(r[1]) > stream[-1] - 1.0]
        assert all(abs(float(r[3]) - SINE_DBFS) < 1.0 for r in late), late  # the feeder's sine arrives
        # the device vanishes
        session.vanish()
        killed_at = time.monotonic()
        time.sleep(3.0)
        assert session.process.poll() is None, "the daemon died with its device"
        assert session.stop_daemon() == 0, session.log.read_text()
        assert time.monotonic() - killed_at < 3.0 + 15
        messages = session.dump.messages()
    statuses = [g[0].args for g in group_bundles(messages=messages, prefix="/mer")]
    no_input = [s for s in statuses if s[0] == "no-input"]
    assert len(no_input) >= 3  # heartbeats after the server died, and the final status
    assert all(s[1] == -120.0 for s in no_input)
    assert statuses[-1][0] == "no-input"


def _query(client: ControlClient) -> dict[str, object]:
    """``/mer/query`` on the control port: the daemon's live settings and counters."""
    client.send(build_message("/mer/query"))
    while True:
        messages = client.receive()
        if messages and messages[0].address.startswith("/mer/config/"):
            return {m.address.rsplit("/", 1)[1]: m.params[0] for m in messages}


def test_capture_comes_back_by_itself_in_the_same_process_when_the_jack_server_returns(tmp_path: Path) -> None:
    """Device loss keeps the process, its counters, its stream time and its control port."""
    csv_path, control_port = tmp_path / "jack.csv", free_udp_port()
    args = ("--csv", str(csv_path), "--control", f"127.0.0.1:{control_port}")
    with JackSession(tmp_path=tmp_path, args=args) as session, contextlib.closing(ControlClient(port=control_port)) as client:
        pid = session.process.pid
        session.connect()
        session.wait_for(
            lambda: any(s[0] == "warming" and abs(s[1] - SINE_DBFS) < 1.0 for s in session.statuses()),
            timeout_s=START_TIMEOUT_S, what="the sine",
        )
        session.wait_for(lambda: len(session.statuses()) >= 8, timeout_s=START_TIMEOUT_S, what="2 s of updates")
        client.wait_until_up()
        before = _query(client)
        assert int(before["updates"]) >= 8
        # the device vanishes
        session.vanish()
        seen = len(session.statuses())
        gone = session.wait_for(  # the first no-input status after the kill (updates in flight may come first)
            lambda: next((seen + i for i, s in enumerate(session.statuses(since=seen)) if s[0] == "no-input"), None),
            timeout_s=RECONNECT_TIMEOUT_S, what="the first no-input status",
        )
        session.wait_for(
            lambda: len(session.statuses(since=gone)) >= 3 and "still gone" in session.log.read_text(),
            timeout_s=RECONNECT_TIMEOUT_S, what="no-input heartbeats while the device is gone",
        )
        assert all(s[0] == "no-input" and s[1] == -120.0 for s in session.statuses(since=gone))
        client.ping("while gone")  # the control port stays bound and answers
        during = _query(client)
        assert int(during["updates"]) >= int(before["updates"])
        # the device returns
        session.come_back()
        back = len(session.statuses())
        session.connect()
        came_back = time.monotonic()
        session.wait_for(  # (connecting again whenever the daemon's ports are new: a slow machine can lose a fresh stream)
            lambda: session.feeder.connect_new_inputs() and any(s[0] == "running" for s in session.statuses(since=back)),
            timeout_s=WINDOW_S + START_TIMEOUT_S, what="running again",
        )
        assert time.monotonic() - came_back >= WINDOW_S - 1.0  # warmed up again on the new audio
        client.ping("after")
        after = _query(client)
        groups = group_bundles(messages=session.dump.messages(), prefix="/mer")
        assert session.stop_daemon() == 0, session.log.read_text()
        assert session.process.pid == pid
        log = session.log.read_text()
    # the counters went on: the update count never went back, nor did the CSV's stream time
    updates = [int(g[0].args[3]) for g in groups]
    assert updates == sorted(updates) and updates[-1] > int(during["updates"])
    assert int(after["updates"]) > int(during["updates"])
    stream = [float(row[1]) for row in _rows(csv_path)]
    assert stream == sorted(stream) and len(set(stream)) == len(stream)
    # the new audio: warming first, then running, at the sine's level, with values
    states = [g[0].args[0] for g in groups[back:]]
    assert "warming" in states and states.index("warming") < states.index("running"), states
    live = [g for g in groups[back:] if g[0].args[0] in ("warming", "running")]
    assert all(abs(g[0].args[1] - SINE_DBFS) < 1.0 for g in live[1:]), [g[0].args for g in live]
    values = [m.args for g in live for m in g if m.address == "/mer/emotion"]
    assert len(values) >= len(live) - 1 and all(len(v) == 8 and all(0.0 <= x <= 1.0 for x in v) for v in values)
    assert "has gone" in log and "is back" in log and "restart" not in log
