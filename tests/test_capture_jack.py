"""Real-time pacing and a vanishing device, through a JACK dummy server.

``jackd -d dummy`` runs a JACK graph in real time with no sound card; a JACK-Client feeder plays a
sine into the daemon's PortAudio input ports. PortAudio's JACK host API is used in callback mode
(its blocking reads on JACK are broken in 19.6). Killing jackd makes the stream inactive: the daemon
must say ``no-input`` and still stop cleanly (closing a dead stream can hang, so the source closes it
from a thread with a timeout), and when a server of the same name comes back, capture again by itself
(the daemon restarts in place and waits for the device).

The servers are stopped with SIGTERM at the end: a SIGKILLed jackd leaves its slot in JACK's shared
registry (8 slots), which only a later server of the same name reclaims, so the test servers share
one name.
"""

from __future__ import annotations

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
from daemon_receivers import OscDump, group_bundles

from mer_live.model import default_model_path

JACK_RATE = 44100
JACK_PERIOD = 1024
SINE_HZ = 440.0
SINE_AMPLITUDE = 0.3
SINE_DBFS = 20 * np.log10(SINE_AMPLITUDE / np.sqrt(2))
START_TIMEOUT_S = 20.0
SERVER_NAME = "merlive-test"
STOP_TIMEOUT_S = 10.0
RECONNECT_TIMEOUT_S = 30.0  # restart in place (model load on a busy machine) + rescans every 2 s
WINDOW_S = 10.0  # warming until the model's window is full

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


def test_jack_capture_is_paced_in_real_time_and_survives_the_server_dying(tmp_path: Path) -> None:
    pytest.importorskip("jack")
    server = JackServer()
    feeder = SineFeeder(server=server)
    csv_path = tmp_path / "jack.csv"
    env = dict(os.environ, JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
    try:
        with OscDump() as dump:
            process = subprocess.Popen(
                [sys.executable, "-m", "mer_live", "-d", "system", "--channel", "0", "--osc", f"127.0.0.1:{dump.port}",
                 "--csv", str(csv_path), "--no-control", "-q"],
                env=env, stderr=subprocess.PIPE, text=True,
            )
            deadline = time.monotonic() + START_TIMEOUT_S
            while feeder.connect_new_inputs() == 0 and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.05)
            connected_at = time.monotonic()
            while len(_rows(csv_path)) < 16 and time.monotonic() < deadline + 10:
                time.sleep(0.05)
            assert process.poll() is None, process.stderr.read()
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
            feeder.close()
            server.kill()
            killed_at = time.monotonic()
            time.sleep(3.0)
            assert process.poll() is None, "the daemon died with its device"
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=15)
            assert process.returncode == 0, stderr
            assert time.monotonic() - killed_at < 3.0 + 15
            messages = dump.messages()
        statuses = [g[0].args for g in group_bundles(messages=messages, prefix="/mer")]
        no_input = [s for s in statuses if s[0] == "no-input"]
        assert len(no_input) >= 3  # heartbeats after the server died, and the final status
        assert all(s[1] == -120.0 for s in no_input)
        assert statuses[-1][0] == "no-input"
    finally:
        server.stop()


def _statuses(dump: OscDump, *, since: int = 0) -> list[list]:
    return [g[0].args for g in group_bundles(messages=dump.messages(settle_s=0), prefix="/mer")[since:]]


def _wait_for(condition, *, timeout_s: float, process: subprocess.Popen, what: str, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the daemon exited while waiting for {what}: {log.read_text()}"
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; daemon log: {log.read_text()}")


def test_capture_comes_back_by_itself_when_the_jack_server_returns(tmp_path: Path) -> None:
    pytest.importorskip("jack")
    server = JackServer()
    feeder = SineFeeder(server=server)
    log = tmp_path / "daemon.log"
    env = dict(os.environ, JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
    try:
        with OscDump() as dump, log.open("w") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "mer_live", "-d", "system", "--channel", "0", "--osc", f"127.0.0.1:{dump.port}",
                 "--no-control", "-q"],
                env=env, stderr=log_file, text=True,
            )
            pid = process.pid
            _wait_for(lambda: feeder.connect_new_inputs(), timeout_s=START_TIMEOUT_S, process=process, what="the daemon's ports", log=log)
            _wait_for(
                lambda: any(s[0] == "warming" and abs(s[1] - SINE_DBFS) < 1.0 for s in _statuses(dump)),
                timeout_s=START_TIMEOUT_S, process=process, what="the sine", log=log,
            )
            # the device vanishes
            feeder.close()
            server.kill()
            gone = len(_statuses(dump))
            _wait_for(
                lambda: sum(s[0] == "no-input" for s in _statuses(dump, since=gone)) >= 3 and "still gone" in log.read_text(),
                timeout_s=RECONNECT_TIMEOUT_S, process=process, what="no-input heartbeats while the device is gone", log=log,
            )
            assert all(s[0] == "no-input" and s[1] == -120.0 for s in _statuses(dump, since=gone))
            # the device returns: a server of the same name, and the feeder again
            server = JackServer()
            feeder = SineFeeder(server=server)
            back = len(_statuses(dump))
            _wait_for(lambda: feeder.connect_new_inputs(), timeout_s=RECONNECT_TIMEOUT_S, process=process, what="the ports to return", log=log)
            came_back = time.monotonic()
            _wait_for(
                lambda: any(s[0] == "running" for s in _statuses(dump, since=back)),
                timeout_s=WINDOW_S + START_TIMEOUT_S, process=process, what="running again", log=log,
            )
            assert time.monotonic() - came_back >= WINDOW_S - 1.0  # warmed up again on the new audio
            groups = group_bundles(messages=dump.messages(), prefix="/mer")[back:]
            process.send_signal(signal.SIGTERM)
            assert process.wait(STOP_TIMEOUT_S + START_TIMEOUT_S) == 0, log.read_text()
            assert process.pid == pid
        states = [g[0].args[0] for g in groups]
        assert "warming" in states and states.index("warming") < states.index("running"), states
        live = [g for g in groups if g[0].args[0] in ("warming", "running")]
        assert all(abs(g[0].args[1] - SINE_DBFS) < 1.0 for g in live[1:]), [g[0].args for g in live]
        values = [m.args for g in live for m in g if m.address == "/mer/emotion"]
        assert len(values) >= len(live) - 1 and all(len(v) == 8 and all(0.0 <= x <= 1.0 for x in v) for v in values)
        assert "has gone" in log.read_text() and "is back" in log.read_text()
    finally:
        feeder.close()
        server.stop()
