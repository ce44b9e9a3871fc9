"""The OSC and CSV sinks: addresses, types, bundles over real UDP; CSV rows, header, failures."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage

from mer_live.core import labels
from mer_live.outputs import csv, osc
from mer_live.core.addresses import OscSpecError, parse_host_port
from mer_live.core.reading import LEVEL_FLOOR_DBFS, Reading, level_dbfs
from mer_live.outputs.csv import CsvHeaderError, CsvPathError, CsvSink
from mer_live.outputs.osc import OscSink

IMMEDIATE_TIMETAG = b"\x00\x00\x00\x00\x00\x00\x00\x01"


def _reading(*, values: bool = True, muted: bool = False, is_update: bool = True) -> Reading:
    rng = np.random.default_rng(0)
    reading = Reading(
        stream_time_s=1.25, wall_time=1_700_000_000.5, state="running", level_dbfs=-20.5, overflows=3,
        updates=5, is_update=is_update, muted=muted,
    )
    if values:
        contributions = rng.uniform(-0.2, 0.2, size=(8, 7))
        bias = rng.uniform(0.0, 0.3, size=8)
        unclipped = bias + contributions.sum(axis=1)
        reading.emotion_unclipped = unclipped
        reading.emotion = np.clip(unclipped, 0, 1)
        reading.mid = rng.uniform(0, 1, size=7)
        reading.raw_emotion = rng.uniform(0, 1, size=8)
        reading.raw_mid = rng.uniform(0, 1, size=7)
        reading.contributions = contributions
        reading.bias = bias
    return reading


def _receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    return sock


def _expected_addresses(prefix: str) -> list[str]:
    return (
        [f"{prefix}/status", f"{prefix}/emotion", f"{prefix}/mid"]
        + [f"{prefix}/emotion/{n}" for n in labels.EMOTIONS]
        + [f"{prefix}/mid/{n}" for n in labels.MID_LEVELS]
        + [f"{prefix}/explain/{n}" for n in labels.EMOTIONS]
        + [f"{prefix}/explain/bias", f"{prefix}/raw/emotion", f"{prefix}/raw/mid"]
    )


def test_one_bundle_with_immediate_timetag_holds_every_address_over_real_udp() -> None:
    receiver = _receiver()
    sink = OscSink(targets=[("127.0.0.1", receiver.getsockname()[1])], prefix="/show")
    reading = _reading()
    sink.process(reading=reading)
    datagram = receiver.recv(65536)
    assert datagram.startswith(b"#bundle\x00") and datagram[8:16] == IMMEDIATE_TIMETAG
    bundle = OscBundle(datagram)
    messages = [content for content in bundle]
    assert [m.address for m in messages] == _expected_addresses("/show")
    by_address = {m.address: m for m in messages}
    status = by_address["/show/status"]
    assert status.params[0] == "running" and status.params[2:] == [3, 5, 0]  # overflows, updates, dropped
    assert abs(status.params[1] - (-20.5)) < 1e-6
    emotion = by_address["/show/emotion"].params
    assert len(emotion) == 8 and all(isinstance(v, float) for v in emotion)
    np.testing.assert_allclose(emotion, reading.emotion, atol=1e-6)
    for index, name in enumerate(labels.EMOTIONS):
        assert by_address[f"/show/emotion/{name}"].params == pytest.approx([reading.emotion[index]], abs=1e-6)
        contributions = by_address[f"/show/explain/{name}"].params
        assert len(contributions) == 7
        total = by_address["/show/explain/bias"].params[index] + sum(contributions)
        assert total == pytest.approx(reading.emotion_unclipped[index], abs=1e-5)
    assert len(by_address["/show/mid"].params) == 7
    assert len(by_address["/show/raw/emotion"].params) == 8 and len(by_address["/show/raw/mid"].params) == 7
    sink.close()
    receiver.close()


def test_messages_format_sends_plain_messages() -> None:
    receiver = _receiver()
    sink = OscSink(targets=[("127.0.0.1", receiver.getsockname()[1])], fmt="messages")
    sink.process(reading=_reading())
    addresses = [OscMessage(receiver.recv(65536)).address for _ in _expected_addresses("/mer")]
    assert addresses == _expected_addresses("/mer")
    sink.close()
    receiver.close()


@pytest.mark.parametrize("reading", [_reading(muted=True), _reading(values=False), _reading(is_update=False, values=False)])
def test_muted_or_valueless_readings_send_status_only(reading: Reading) -> None:
    receiver = _receiver()
    sink = OscSink(targets=[("127.0.0.1", receiver.getsockname()[1])])
    sink.process(reading=reading)
    bundle = OscBundle(receiver.recv(65536))
    assert [m.address for m in bundle] == ["/mer/status"]
    sink.close()
    receiver.close()


def test_every_target_gets_the_bundle() -> None:
    receivers = [_receiver(), _receiver()]
    sink = OscSink(targets=[("127.0.0.1", r.getsockname()[1]) for r in receivers])
    sink.process(reading=_reading())
    for receiver in receivers:
        assert OscBundle(receiver.recv(65536)).num_contents == len(_expected_addresses("/mer"))
        receiver.close()
    sink.close()


def _wait_for_log(caplog: pytest.LogCaptureFixture, *needles: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(all(n in r.getMessage() for n in needles) for r in caplog.records):
        assert time.monotonic() < deadline, f"no log line with {needles}"
        time.sleep(0.02)


def test_unresolvable_host_and_closed_port_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    closed = _receiver()
    port = closed.getsockname()[1]
    closed.close()  # nobody listens: ICMP port unreachable
    sink = OscSink(targets=[("no-such-host.invalid", 9000), ("127.0.0.1", port)])
    with caplog.at_level(logging.WARNING, logger="mer_live"):
        for _ in range(20):
            sink.process(reading=_reading())
        _wait_for_log(caplog, "no-such-host.invalid")  # looked up in the background
    assert len([r for r in caplog.records if "no-such-host" in r.getMessage()]) == 1  # rate-limited
    sink.close()


def test_a_host_idna_cannot_encode_is_logged_and_later_targets_still_get_the_bundle(caplog: pytest.LogCaptureFixture) -> None:
    """getaddrinfo raises UnicodeError (not OSError) for an empty label such as ``a..b``."""
    with pytest.raises(UnicodeError):
        socket.getaddrinfo("a..b", 9000)  # the check below can fail
    receiver = _receiver()
    sink = OscSink(targets=[("a..b", 9000), ("127.0.0.1", receiver.getsockname()[1])])
    with caplog.at_level(logging.WARNING, logger="mer_live"):
        sink.process(reading=_reading())
        assert OscBundle(receiver.recv(65536)).num_contents == len(_expected_addresses("/mer"))
        _wait_for_log(caplog, "a..b", "cannot resolve")
    assert sink.dropped == 1 and sink.delivered == 1  # the unresolved target dropped the update
    receiver.close()
    sink.close()


def test_broadcast_target_is_allowed(caplog: pytest.LogCaptureFixture) -> None:
    """Without SO_BROADCAST the kernel refuses the send (EACCES), which the sink would log."""
    sink = OscSink(targets=[("127.255.255.255", 9)])
    with caplog.at_level(logging.WARNING, logger="mer_live"):
        sink.process(reading=_reading())
    assert not [r for r in caplog.records if "Permission denied" in r.getMessage()]
    sink.close()
    plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(PermissionError):
        plain.sendto(b"x", ("127.255.255.255", 9))  # the check above can fail
    plain.close()


@settings(max_examples=100, deadline=None)
@given(host=st.from_regex(r"[a-z0-9][a-z0-9\-]{0,14}(\.[a-z0-9][a-z0-9\-]{0,14}){0,3}", fullmatch=True), port=st.integers(min_value=1, max_value=65535))
def test_host_port_round_trip(host: str, port: int) -> None:
    assert parse_host_port(spec=f"{host}:{port}") == (host, port)


@pytest.mark.parametrize("spec", ["", "9000", "host:", ":9000", "host:0", "host:65536", "host:x1", "::1:9000", "a b:1", "a..b:9000", f"{'x' * 64}.org:9000"])
def test_bad_host_port_specs_are_rejected(spec: str) -> None:
    with pytest.raises(OscSpecError):
        parse_host_port(spec=spec)


def test_ipv6_in_brackets() -> None:
    assert parse_host_port(spec="[::1]:9000") == ("::1", 9000)


@settings(max_examples=100, deadline=None)
@given(spec=st.text(max_size=30))
def test_host_port_parser_never_raises_anything_else(spec: str) -> None:
    try:
        host, port = parse_host_port(spec=spec)
    except OscSpecError:
        return
    assert host and 0 < port <= 65535


@pytest.mark.parametrize("prefix", ["mer", "/", "/mer/", "/m er", "/m*"])
def test_bad_prefixes_are_rejected(prefix: str) -> None:
    with pytest.raises(ValueError):
        OscSink(targets=[], prefix=prefix)


# ----------------------------------------------------------------------------------------------- CSV


def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def test_csv_header_once_one_row_per_update_and_append(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    sink = CsvSink(path=path)
    sink.process(reading=_reading())
    sink.process(reading=_reading(is_update=False, values=False))  # heartbeat: no row
    sink.process(reading=_reading(values=False))  # no values yet: empty cells
    sink.close()
    again = CsvSink(path=path)
    again.process(reading=_reading())
    again.close()
    rows = _rows(path)
    assert rows[0] == list(csv.CSV_COLUMNS)
    assert rows[0][4:] == list(labels.EMOTIONS) + list(labels.MID_LEVELS)
    assert len(rows) == 4 and all(len(row) == len(csv.CSV_COLUMNS) for row in rows)
    assert rows[1][0] == "2023-11-14T22:13:20.500+00:00" and rows[1][1] == "1.250" and rows[1][2] == "running"
    assert float(rows[1][3]) == -20.5
    assert rows[2][4:] == [""] * 15
    values = [float(v) for v in rows[3][4:]]
    assert all(0.0 <= v <= 1.0 for v in values)


def test_csv_each_row_is_a_single_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = CsvSink(path=tmp_path / "log.csv")
    calls: list[bytes] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        calls.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(csv.os, "write", counting_write)
    sink.process(reading=_reading())
    assert len(calls) == 1 and calls[0].endswith(b"\n") and calls[0].count(b"\n") == 1
    sink.close()


def test_csv_with_another_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(CsvHeaderError, match="header"):
        CsvSink(path=path)
    assert path.read_text() == "a,b,c\n1,2,3\n"


def test_csv_partial_last_line_is_cut_on_open(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    sink = CsvSink(path=path)
    sink.process(reading=_reading())
    sink.close()
    with open(path, "a") as handle:
        handle.write("2023-11-14T22:13:20.500+00:00,1.2")
    sink = CsvSink(path=path)
    sink.process(reading=_reading())
    sink.close()
    rows = _rows(path)
    assert len(rows) == 3 and all(len(r) == len(csv.CSV_COLUMNS) for r in rows)


def test_csv_that_cannot_be_written_at_start_is_a_path_error() -> None:
    """The header cannot go to /dev/full: one line with the cause (the daemon's exit 2)."""
    with pytest.raises(CsvPathError, match="/dev/full.*No space left on device"):
        CsvSink(path="/dev/full")


def test_csv_bad_path_at_start_is_a_path_error_and_later_logged_then_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(csv, "CSV_REOPEN_RETRY_S", 0.0)
    path = tmp_path / "gone-dir" / "log.csv"
    with pytest.raises(CsvPathError, match="No such file or directory"):
        CsvSink(path=path)
    path.parent.mkdir()
    sink = CsvSink(path=path)
    sink.process(reading=_reading())
    shutil.rmtree(path.parent)  # mid-run: the folder goes away
    with caplog.at_level(logging.WARNING, logger="mer_live"):
        sink.process(reading=_reading())
    assert sink.rows_written == 1 and sink.dropped == 1
    assert any("cannot open" in r.getMessage() for r in caplog.records), caplog.text
    path.parent.mkdir()
    sink.process(reading=_reading())
    sink.close()
    assert sink.rows_written == 2 and len(_rows(path)) == 2  # a new file: the header and the row after the gap


def test_level_dbfs_is_floored() -> None:
    assert level_dbfs(samples=np.zeros(100)) == LEVEL_FLOOR_DBFS
    assert level_dbfs(samples=np.array([])) == LEVEL_FLOOR_DBFS
    assert level_dbfs(samples=np.full(100, 0.5)) == pytest.approx(20 * np.log10(0.5))
    assert level_dbfs(samples=np.full(10, 1e-9)) == LEVEL_FLOOR_DBFS


def test_csv_fifo_without_a_reader_does_not_block_and_is_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import threading

    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    made: list[CsvSink] = []
    with caplog.at_level(logging.WARNING, logger="mer_live"):
        opener = threading.Thread(target=lambda: made.append(CsvSink(path=fifo)), daemon=True)
        opener.start()
        opener.join(5.0)
        blocked = opener.is_alive()
        if blocked:  # unblock the stuck open so that the test run can go on
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            opener.join(5.0)
    assert not blocked, "opening a FIFO with no reader blocked"
    assert made and made[0].rows_written == 0
    assert any("cannot open" in r.getMessage() and str(fifo) in r.getMessage() for r in caplog.records)
    made[0].close()


def test_csv_fifo_with_a_reader_gets_the_header_and_rows(tmp_path: Path) -> None:
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    sink = CsvSink(path=fifo)
    sink.process(reading=_reading())
    sink.close()
    data = os.read(reader, 65536).decode()
    os.close(reader)
    assert data.startswith(csv.CSV_HEADER) and data.count("\n") == 2


F_SETPIPE_SZ = 1031  # fcntl (Linux): set a pipe's buffer size


def test_csv_fifo_whose_reader_stops_drops_whole_rows_without_blocking(tmp_path: Path) -> None:
    import fcntl
    import time

    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    fcntl.fcntl(reader, F_SETPIPE_SZ, 4096)  # one page: full after ~20 rows
    sink = CsvSink(path=fifo)
    started = time.monotonic()
    for _ in range(200):
        sink.process(reading=_reading())
    assert time.monotonic() - started < 2.0
    assert sink.delivered + sink.dropped == 200 and sink.dropped > 150
    data = os.read(reader, 65536).decode()
    os.close(reader)
    sink.close()
    lines = data.splitlines(keepends=True)
    assert lines[0] == csv.CSV_HEADER and len(lines) == 1 + sink.delivered
    assert all(line.endswith("\n") and line.count(",") == len(csv.CSV_COLUMNS) - 1 for line in lines)


def test_csv_fifo_lets_go_of_a_gone_reader_and_serves_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(csv, "FIFO_REOPEN_RETRY_S", 0.0)
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    first = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    sink = CsvSink(path=fifo)
    sink.process(reading=_reading())
    assert os.read(first, 65536).decode().count("\n") == 2  # header and a row
    os.close(first)
    sink.process(reading=_reading())  # EPIPE: dropped, and the pipe is let go
    assert sink.dropped == 1
    second = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    time.sleep(0.01)
    sink.process(reading=_reading())
    data = os.read(second, 65536).decode()
    os.close(second)
    sink.close()
    assert data.startswith(csv.CSV_HEADER) and data.count("\n") == 2 and sink.delivered == 2


def test_a_host_name_is_looked_up_in_the_background_and_then_served() -> None:
    import time

    family, kind, _, _, address = socket.getaddrinfo("localhost", 0, type=socket.SOCK_DGRAM)[0]
    receiver = socket.socket(family, kind)
    receiver.bind(address)  # where the sink's own lookup of "localhost" will send
    sink = OscSink(targets=[("localhost", receiver.getsockname()[1])])
    deadline = time.monotonic() + 10.0
    receiver.settimeout(0.05)
    got = None
    while got is None and time.monotonic() < deadline:
        sink.process(reading=_reading())
        try:
            got = receiver.recv(65536)
        except socket.timeout:
            pass
    assert got is not None and OscBundle(got).num_contents == len(_expected_addresses("/mer"))
    assert sink.delivered >= 1
    sink.close()
    receiver.close()


def _python_osc_packets(*, reading: Reading, prefix: str, fmt: str) -> list[bytes]:
    """The reference: python-osc's builders (which parse each datagram they build)."""
    from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
    from pythonosc.osc_message_builder import OscMessageBuilder

    messages = []
    for address, arguments in osc.osc_messages(reading=reading, prefix=prefix):
        builder = OscMessageBuilder(address=address)
        for argument in arguments:
            kind = "s" if isinstance(argument, str) else "i" if isinstance(argument, int) else "f"
            builder.add_arg(argument, kind)
        messages.append(builder.build())
    if fmt == "messages":
        return [message.dgram for message in messages]
    bundle = OscBundleBuilder(IMMEDIATELY)
    for message in messages:
        bundle.add_content(message)
    return [bundle.build().dgram]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=95, max_size=95),  # 56 + 8 + 8 + 7 + 8 + 7 + 1
    state=st.text(min_size=0, max_size=12),
    counters=st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)),
    prefix=st.sampled_from(["/mer", "/a", "/stage/left", "/émotion"]),
    muted=st.booleans(),
    fmt=st.sampled_from(["bundle", "messages"]),
)
def test_the_osc_datagrams_are_byte_for_byte_python_oscs(values, state, counters, prefix, muted, fmt) -> None:
    """The sink's own OSC encoder (no parse of what it has just built) against python-osc's builders."""
    v = np.array(values)
    reading = Reading(stream_time_s=1.0, wall_time=0.0, state=state, level_dbfs=float(v[-1]), overflows=counters[0],
                      updates=counters[1], muted=muted, dropped=counters[2])
    reading.contributions = v[:56].reshape(8, 7)
    reading.emotion, reading.raw_emotion, reading.bias = v[56:64], v[64:72], v[79:87]
    reading.mid, reading.raw_mid = v[72:79], v[87:94]
    reading.emotion_unclipped = reading.emotion
    assert osc.osc_packets(reading=reading, prefix=prefix, fmt=fmt) == _python_osc_packets(reading=reading, prefix=prefix, fmt=fmt)


def test_csv_works_where_the_os_has_no_nonblocking_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no ``os.O_NONBLOCK``: the sink opens the file without it and writes the same rows."""
    nonblocking = os.O_NONBLOCK
    monkeypatch.delattr(os, "O_NONBLOCK")
    assert not csv.open_flags() & nonblocking
    path = tmp_path / "rehearsal.csv"
    sink = CsvSink(path=path)
    for _ in range(3):
        sink.process(reading=_reading())
    sink.close()
    lines = path.read_text().splitlines()
    assert lines[0] + "\n" == csv.CSV_HEADER and len(lines) == 4 and sink.rows_written == 3
