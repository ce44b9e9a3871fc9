"""The output stage (mer_live.outputs.base): a sink that blocks for real delays neither the caller nor the
other sinks, its losses are counted and reported, and closing never hangs."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_packet import OscPacket

from mer_live.core import labels
from mer_live.outputs.base import Output, SinkCounts
from mer_live.core.reading import Reading
from mer_live.outputs.csv import CsvSink
from mer_live.outputs.osc import OscSink

READINGS = 600
QUEUE = 16
CSV_PACE_TIMEOUT_S = 5.0
HANDING_BUDGET_S = 2.0  # for all READINGS hand-overs together; a lane blocked in a write must not add to it


def _reading(index: int, *, is_update: bool = True) -> Reading:
    return Reading(
        stream_time_s=index * 0.1,
        wall_time=1_700_000_000.0 + index * 0.1,
        state="running",
        level_dbfs=-20.0,
        overflows=0,
        updates=index,
        is_update=is_update,
        emotion=np.full(labels.NUM_EMOTIONS, 0.5),
        emotion_unclipped=np.full(labels.NUM_EMOTIONS, 0.5),
        mid=np.full(labels.NUM_MID_LEVELS, 0.5),
        raw_emotion=np.full(labels.NUM_EMOTIONS, 0.5),
        raw_mid=np.full(labels.NUM_MID_LEVELS, 0.5),
        contributions=np.zeros((labels.NUM_EMOTIONS, labels.NUM_MID_LEVELS)),
        bias=np.full(labels.NUM_EMOTIONS, 0.5),
    )


class PipeSink:
    """Writes each update to a real pipe in blocking mode: once nobody reads, ``write`` blocks."""

    name = "pipe"

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.closed = threading.Event()

    def process(self, *, reading: Reading) -> None:
        os.write(self.write_fd, b"x" * 4096)

    def close(self) -> None:
        os.close(self.write_fd)
        self.closed.set()

    def unblock(self) -> None:
        os.close(self.read_fd)  # the blocked write fails with EPIPE and the lane can finish


class Exploding:
    def process(self, *, reading: Reading) -> None:
        raise RuntimeError("boom")

    def close(self) -> None:
        pass


def test_a_blocked_sink_delays_neither_the_caller_nor_the_csv(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = PipeSink()
    csv = CsvSink(path=tmp_path / "rows.csv")
    output = Output(sinks=[blocked, csv], queue_readings=QUEUE)
    try:
        with caplog.at_level(logging.WARNING, logger="mer_live"):
            handing = 0.0  # time spent inside Output.process: what the worker would wait
            for index in range(READINGS):
                started = time.perf_counter()
                output.process(reading=_reading(index))
                handing += time.perf_counter() - started
                # the CSV keeps pace while the pipe is stuck (waiting here keeps a loaded machine from
                # making the CSV's own queue overflow, which is not what this test is about)
                deadline = time.monotonic() + CSV_PACE_TIMEOUT_S
                while output.counts()[1].delivered <= index and time.monotonic() < deadline:
                    time.sleep(0.0005)
                assert output.counts()[1].delivered > index, f"the CSV stalled at reading {index} behind the stuck pipe"
            closing = time.perf_counter()
            output.close()
            closed_in = time.perf_counter() - closing
        pipe, rows = output.counts()
        assert handing < HANDING_BUDGET_S, f"handing {READINGS} readings over took {handing:.2f} s"
        assert closed_in < 1.0
        assert rows == SinkCounts(name=f"CSV {tmp_path / 'rows.csv'}", delivered=READINGS, dropped=0)
        assert len((tmp_path / "rows.csv").read_text().splitlines()) == 1 + READINGS
        # the pipe took 16 writes of 4 KiB (64 KiB), one write is blocked, QUEUE wait; the rest were dropped
        assert pipe.name == "pipe" and pipe.delivered == 16
        assert pipe.dropped == READINGS - 16 - 1 - QUEUE
        messages = [r.getMessage() for r in caplog.records]
        assert any("output pipe" in m and "update(s) dropped" in m and "cannot keep up" in m for m in messages), messages
        assert any("output pipe did not finish" in m for m in messages), messages
        assert not blocked.closed.is_set()  # never closed under its stuck write
    finally:
        blocked.unblock()


def test_readings_leave_stamped_with_the_drops_so_far() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2.0)
    blocked = PipeSink()
    osc = OscSink(targets=[("127.0.0.1", receiver.getsockname()[1])])
    output = Output(sinks=[blocked, osc, Exploding()], queue_readings=QUEUE)
    try:
        for index in range(40):
            output.process(reading=_reading(index))
            time.sleep(0.002)
        statuses = []
        while len(statuses) < 40:
            datagram = receiver.recv(65536)
            statuses.extend(t.message.params for t in OscPacket(datagram).messages if t.message.address == "/mer/status")
        dropped = [status[4] for status in statuses]
        assert dropped == sorted(dropped) and dropped[-1] > 40, dropped  # the explosions and the pipe's losses
        counts = {c.name: c for c in output.counts()}
        assert counts["Exploding"].dropped == 40 and counts["Exploding"].delivered == 0
        assert output.dropped == sum(c.dropped for c in counts.values())
    finally:
        blocked.unblock()
        output.close()
        receiver.close()


def test_heartbeats_pass_in_order_but_are_not_counted(tmp_path: Path) -> None:
    seen: list[Reading] = []

    class Recorder:
        def process(self, *, reading: Reading) -> None:
            seen.append(reading)

        def close(self) -> None:
            pass

    csv = CsvSink(path=tmp_path / "rows.csv")
    output = Output(sinks=[csv, Recorder()])
    for index in range(5):
        output.process(reading=_reading(index, is_update=index % 2 == 0))
    output.close()
    rows, recorded = output.counts()
    assert rows.delivered == 3 and rows.dropped == 0
    assert recorded.delivered == 3 and len(seen) == 5  # a sink without counters: the lane counts
    assert [reading.updates for reading in seen] == list(range(5)) and all(reading.dropped == 0 for reading in seen)


def test_close_sends_what_is_queued_then_closes_each_sink_on_its_lane(tmp_path: Path) -> None:
    closed_on: list[str] = []

    class Slow:
        name = "slow"

        def process(self, *, reading: Reading) -> None:
            time.sleep(0.01)

        def close(self) -> None:
            closed_on.append(threading.current_thread().name)

    slow = Slow()
    output = Output(sinks=[slow])
    for index in range(20):
        output.process(reading=_reading(index))
    output.close()
    (counts,) = output.counts()
    assert counts.delivered == 20 and closed_on == ["mer-live-output slow"]
