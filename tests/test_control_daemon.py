"""The control port of the real daemon: ping/pong, rate, smoothing, mute, query, and a burst of junk.

The daemon plays the demo piece paced in real time and sends OSC to a socket of this test; the test
talks to ``--control`` over UDP and watches the effect in the daemon's own output.
"""

from __future__ import annotations

import random
import statistics
import time

import numpy as np
import pytest
from control_helpers import ControlClient, build_bundle, build_message
from osc_receivers import DaemonProcess, OscReceiver, free_udp_port

from mer_live.config.settings import AnalysisSettings

FIRST_UPDATE_TIMEOUT_S = 15.0
START_RATE_HZ = 4.0
FAST_RATE_HZ = 10.0
JUNK_DATAGRAMS = 300
JUNK_SEED = 20261122
JUNK_BURST = 50


def update_intervals(entries: list) -> list[float]:
    """Arrival intervals between successive value updates (``/mer/status`` with a new update count)."""
    times, last = [], None
    for arrival, address, params in entries:
        if address == "/mer/status" and params[3] != last:
            times.append(arrival)
            last = params[3]
    return list(np.diff(times))


def query(client: ControlClient) -> dict:
    client.send(build_message("/mer/query"))
    while True:
        messages = client.receive()
        if messages and messages[0].address.startswith("/mer/config/"):
            return {m.address.rsplit("/", 1)[1]: m.params[0] for m in messages}


@pytest.fixture
def live_daemon():
    recorder = OscReceiver()
    control_port = free_udp_port()
    daemon = DaemonProcess(args=["--demo", "--duration", "30", "--osc", f"127.0.0.1:{recorder.port}",
                                 "--control", f"127.0.0.1:{control_port}", "--rate", str(START_RATE_HZ),
                                 "--smoothing", "0", "-q"])
    client = ControlClient(port=control_port)
    try:
        recorder.wait_for_messages(address="/mer/status", count=1, start=0.0, timeout=FIRST_UPDATE_TIMEOUT_S)
        yield daemon, recorder, client
    finally:
        client.close()
        daemon.close()
        recorder.close()


@pytest.mark.slow
def test_control_port_of_the_real_daemon(live_daemon) -> None:
    daemon, recorder, client = live_daemon

    # ping/pong round trip, with and without an id
    client.ping(17)  # returns only once the matching pong arrived (the socket timeout fails the test)
    client.ping("stage-left")
    client.send(build_message("/mer/ping"))
    assert [(m.address, m.params) for m in client.receive()] == [("/mer/pong", [])]

    config = query(client)
    assert config["rate"] == START_RATE_HZ and config["smoothing"] == 0.0 and config["muted"] == 0
    assert config["follow"] == pytest.approx(AnalysisSettings.follow) and config["still_speed"] == pytest.approx(AnalysisSettings.still_speed)
    assert config["change"] == pytest.approx(AnalysisSettings.change)

    # smoothing 0: the sent values are the raw values
    mark = time.monotonic()
    recorder.wait_for_messages(address="/mer/emotion", count=4, start=mark, timeout=5)
    before = recorder.since(mark)

    # rate 4 -> 10 updates per second, visible in the arrival times
    mark = time.monotonic()
    client.send(build_message("/mer/rate", FAST_RATE_HZ))
    client.ping(1)
    recorder.wait_for_messages(address="/mer/emotion", count=12, start=mark, timeout=5)
    after_rate = recorder.since(mark)
    slow = statistics.median(update_intervals(before))
    fast = statistics.median(update_intervals(after_rate)[2:])  # skip the switch-over
    # a ratio of two intervals from the same real-time run, so machine load cancels out
    assert slow / fast == pytest.approx(FAST_RATE_HZ / START_RATE_HZ, rel=0.3)

    # smoothing 20 s, not adaptive (follow 0, no change points): the sent values now lag the raw ones
    mark = time.monotonic()
    client.send(build_bundle(build_message("/mer/smoothing", 20.0), build_message("/mer/follow", 0.0),
                             build_message("/mer/still_speed", 0.25), build_message("/mer/change", 0.0)))
    client.ping(2)
    recorder.wait_for_messages(address="/mer/emotion", count=8, start=mark, timeout=5)
    after_smoothing = recorder.since(mark)

    def variation_ratio(entries: list) -> float:
        """Total variation of the sent emotions over that of the raw ones (1 = unsmoothed)."""
        sent = np.array([p for _, a, p in entries if a == "/mer/emotion"])
        raw = np.array([p for _, a, p in entries if a == "/mer/raw/emotion"])
        count = min(len(sent), len(raw))
        raw_variation = np.abs(np.diff(raw[:count], axis=0)).sum()
        assert raw_variation > 0, "the raw values never changed"
        return float(np.abs(np.diff(sent[:count], axis=0)).sum() / raw_variation)

    assert variation_ratio(before) == pytest.approx(1.0, abs=0.2)
    assert variation_ratio(after_smoothing[2:]) < 0.5

    # bad commands change nothing and the daemon keeps going
    client.send(build_message("/mer/rate", 999.0))
    client.send(build_bundle(build_message("/mer/smoothing", 1.0), build_message("/mer/rate", "fast")))
    client.send(build_message("/mer/volume", 1.0))
    config = query(client)
    assert config["rate"] == FAST_RATE_HZ and config["smoothing"] == 20.0
    assert config["follow"] == 0.0 and config["still_speed"] == 0.25 and config["change"] == 0.0

    # reset is accepted (the smoothing state restarts from the next raw value)
    mark = time.monotonic()
    client.send(build_message("/mer/reset"))
    client.ping(3)
    recorder.wait_for_messages(address="/mer/emotion", count=1, start=mark + 0.15, timeout=5)

    # mute: only /mer/status goes out; unmute: values again
    client.send(build_message("/mer/mute", 1))
    client.ping(4)
    time.sleep(0.3)  # let an update that was already on its way arrive
    mark = time.monotonic()
    statuses = recorder.wait_for_messages(address="/mer/status", count=5, start=mark, timeout=5)
    assert {address for _, address, _ in recorder.since(mark)} == {"/mer/status"}
    assert len({params[3] for _, _, params in statuses}) >= 2, "status must keep counting while muted"
    assert query(client)["muted"] == 1
    client.send(build_message("/mer/mute", 0))
    client.ping(5)
    mark = time.monotonic()
    recorder.wait_for_messages(address="/mer/emotion", count=2, start=mark, timeout=5)

    # a burst of junk: random bytes and mangled OSC; the daemon still answers and is unchanged
    generator = random.Random(JUNK_SEED)
    valid = build_message("/mer/ping", "junk")  # no one-byte change of it is a setting
    for index in range(JUNK_DATAGRAMS):
        if index % 3 == 0:
            junk = bytes(generator.randrange(256) for _ in range(generator.randrange(1, 80)))
        elif index % 3 == 1:
            junk = bytearray(valid)
            junk[generator.randrange(len(junk))] = generator.randrange(256)
            junk = bytes(junk)
        else:
            junk = valid[: generator.randrange(len(valid))]
        client.send(junk)
        if index % JUNK_BURST == JUNK_BURST - 1:
            client.ping(f"burst-{index}")  # UDP: more than a socket buffer of junk would drop our ping
    client.ping(6)  # still answering after the junk
    config = query(client)
    assert (config["rate"], config["smoothing"], config["muted"]) == (FAST_RATE_HZ, 20.0, 0)
    assert daemon.process.poll() is None

    assert daemon.stop() == 0
    assert "control:" in daemon.stderr_text()  # the rejections were logged (rate-limited) on stderr
