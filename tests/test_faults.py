"""The reliability suite: every defect of the fault-injection run (issue 8), each with real parts.

Outputs that stall (the design fix): a real FIFO whose reader stops reading, a real slow resolver (a
tiny DNS server on a loopback address that answers after 10 s, with the daemon's resolver pointed at
it, see :class:`SlowDnsServer`), and a real receiver socket that is full. The control port gets real
datagrams. The daemon runs as a real program where timing matters (``-m mer_live`` subprocesses), and
in-process (``daemon.main``) for the quick one-line-error cases.

How the resolver is made slow for real, without touching the machine's own settings: the daemon runs
under ``unshare --user --map-root-user --mount`` (a private mount namespace, no root needed), where
``/etc/resolv.conf`` is bind-mounted over by a file that names our DNS server (``nameserver
127.53.0.1``, ``options timeout:30 attempts:1``). glibc's ``getaddrinfo`` in the daemon then sends its
A/AAAA queries to that server, which sleeps 10 s before answering ``127.0.0.1``. Nothing else on the
machine sees the changed file. The server listens on port 53 of a loopback address, so the test itself
needs the right to bind port 53 (root, as in CI); it is skipped, with the reason, when it cannot.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from control_helpers import RecordingTarget, build_bundle, build_message
from osc_receivers import OscReceiver
from pythonosc.osc_packet import OscPacket

from mer_live.config import options
from mer_live.live import daemon
from mer_live.control.server import ControlServer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
RATE = 22050
F_SETPIPE_SZ = 1031  # fcntl: set a pipe's buffer size (Linux)
SMALL_PIPE_BYTES = 4096  # one page: the FIFO is full after ~20 CSV rows
RUN_TIMEOUT_S = 60.0
FINAL_STATUS_WITHIN_S = 1.0
LONG_NAME = "x" * 300  # over NAME_MAX (255 bytes)


# ------------------------------------------------------------------------------------------ helpers


def _write_wav(path: Path, *, seconds: float, rate: int = RATE, channels: int = 1, dc: float | None = None) -> Path:
    """A test file: a tone plus noise (deterministic), or a constant ``dc`` with no audio in it."""
    frames = int(round(seconds * rate))
    if dc is not None:
        audio = np.full((frames, channels), dc, dtype=np.float32)
    else:
        t = np.arange(frames) / rate
        rng = np.random.default_rng(7)
        mono = 0.2 * np.sin(2 * np.pi * 220.0 * t) + 0.05 * rng.standard_normal(frames)
        audio = np.repeat(mono[:, None], channels, axis=1).astype(np.float32)
    soundfile.write(str(path), audio, rate, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def audio_10s(tmp_path_factory) -> Path:
    return _write_wav(tmp_path_factory.mktemp("audio") / "ten.wav", seconds=10.0)


@pytest.fixture(scope="module")
def audio_60s(tmp_path_factory) -> Path:
    return _write_wav(tmp_path_factory.mktemp("audio") / "sixty.wav", seconds=60.0)


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), PYTHONUNBUFFERED="1")


def _start(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "mer_live", *args],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen, *, timeout: float = RUN_TIMEOUT_S) -> tuple[int | None, str]:
    """Wait for the daemon; kill it after ``timeout`` (returns None then) and give its stderr."""
    try:
        _, err = process.communicate(timeout=timeout)
        return process.returncode, err
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        return None, err


@pytest.fixture
def receiver():
    made: list[OscReceiver] = []

    def make() -> OscReceiver:
        made.append(OscReceiver())
        return made[-1]

    yield make
    for item in made:
        item.close()


def _csv_rows(path: Path) -> list[list[str]]:
    lines = path.read_text().splitlines()
    assert lines and lines[0].startswith("time,stream_time_s,state"), lines[:1]
    return [line.split(",") for line in lines[1:]]


DRAIN_S = 5.0  # when the daemon exits, the receiver's thread may still be reading datagrams already in its socket


def _updates_seen(rx: OscReceiver, *, count: int) -> set[int]:
    """The update counts that ``rx`` saw, once it has read what had arrived (waiting up to ``DRAIN_S`` for
    all ``count``; a lost update still fails the comparison)."""
    rx.wait_for(lambda r: r.update_numbers() >= set(range(1, count + 1)), timeout=DRAIN_S)
    return rx.update_numbers()


def _final_status(rx: OscReceiver) -> list:
    statuses = rx.statuses()
    assert statuses, "no status at all"
    return statuses[-1][1]


def _hold_fifo(path: Path, *, pipe_bytes: int | None = SMALL_PIPE_BYTES) -> int:
    """A reader that opens the FIFO and then never reads (its buffer shrunk to ``pipe_bytes``)."""
    os.mkfifo(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if pipe_bytes:
        fcntl.fcntl(fd, F_SETPIPE_SZ, pipe_bytes)
    return fd


# ---------------------------------------------------------------------- high 1: a stuck FIFO reader


@pytest.mark.slow
def test_stuck_fifo_reader_delays_neither_analysis_nor_osc(tmp_path: Path, audio_10s: Path, receiver) -> None:
    """A CSV FIFO whose reader stopped reading: OSC still gets every update, the run ends at the end of
    the file with exit 0, the rows that could not go are counted in /mer/status and the log, and
    nothing tries to fsync the FIFO."""
    fifo = tmp_path / "rows.fifo"
    held = _hold_fifo(fifo)
    rx = receiver()
    try:
        process = _start(
            "--input", str(audio_10s), "--fast", "--rate", "30", "--osc", f"{LOOPBACK}:{rx.port}",
            "--no-control", "--csv", str(fifo), "-q",
        )
        code, err = _finish(process, timeout=RUN_TIMEOUT_S)
    finally:
        os.close(held)
    assert code == 0, err
    assert _updates_seen(rx, count=300) == set(range(1, 301)), err  # 10 s at 30 updates/s, none held up by the FIFO
    final = _final_status(rx)
    assert final[0] == "no-input" and final[3] == 300, final
    assert len(final) == 5 and final[4] > 0, f"the final status must count the dropped rows: {final}"
    assert "dropped" in err and "rows.fifo" in err, err
    assert "fsync" not in err, err


@pytest.mark.slow
def test_sigterm_with_a_stuck_fifo_sends_the_final_status_within_a_second(tmp_path: Path, audio_60s: Path, receiver) -> None:
    fifo = tmp_path / "rows.fifo"
    held = _hold_fifo(fifo)
    rx = receiver()
    try:
        process = _start(
            "--input", str(audio_60s), "--rate", "30", "--osc", f"{LOOPBACK}:{rx.port}",
            "--no-control", "--csv", str(fifo), "-q",
        )
        # the 4 KiB pipe is full after ~20 rows (under a second); updates must keep coming after that
        assert rx.wait_for(lambda r: len(r.update_times()) >= 60, timeout=20.0), "updates stopped"
        before = len(rx.update_times())
        time.sleep(1.0)
        assert len(rx.update_times()) >= before + 20, "OSC stalled behind the stuck FIFO"
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code, err = _finish(process, timeout=15.0)
    finally:
        os.close(held)
    assert code == 0, err
    finals = [(when, args) for when, args in rx.statuses() if args[0] == "no-input"]
    assert finals, "no final status"
    assert finals[-1][0] - sent <= FINAL_STATUS_WITHIN_S, f"final status {finals[-1][0] - sent:.2f} s after SIGTERM"
    assert "did not stop" not in err, err


@pytest.mark.slow
def test_a_fifo_reader_that_comes_back_gets_rows_again(tmp_path: Path, audio_60s: Path) -> None:
    """The first reader goes away (EPIPE); the daemon lets go of the dead pipe, so a new reader gets a
    header and fresh rows."""
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    process = _start("--input", str(audio_60s), "--rate", "10", "--no-osc", "--no-control", "--csv", str(fifo), "-q")
    try:
        with open(fifo, "rb") as first:
            assert first.readline().startswith(b"time,stream_time_s"), "no header"
            first.readline()
        time.sleep(1.5)  # rows written meanwhile meet a pipe without a reader: EPIPE
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # never blocks, even if nobody writes
        try:
            got = b""
            deadline = time.monotonic() + 8.0
            while time.monotonic() < deadline and got.count(b"\n") < 3:
                try:
                    got += os.read(fd, 65536)
                except BlockingIOError:
                    pass
                time.sleep(0.05)
        finally:
            os.close(fd)
    finally:
        process.send_signal(signal.SIGTERM)
        code, err = _finish(process, timeout=15.0)
    assert got.startswith(b"time,stream_time_s"), f"the returning reader got {got[:80]!r}; daemon said: {err}"
    assert got.count(b"\n") >= 3, got
    assert code == 0, err


@pytest.mark.slow
def test_a_stderr_nobody_reads_stalls_nothing(audio_10s: Path, receiver) -> None:
    """stderr (the log and the readout) is a pipe that is full from the start and never read: the run
    still delivers every update and ends with exit 0."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, F_SETPIPE_SZ, SMALL_PIPE_BYTES)
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"#" * 512)
    except BlockingIOError:
        pass  # full
    os.set_blocking(write_end, True)
    rx = receiver()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "mer_live", "--input", str(audio_10s), "--fast", "--rate", "30",
             "--osc", f"{LOOPBACK}:{rx.port}", "--no-control"],
            env=_env(), stdout=subprocess.DEVNULL, stderr=write_end,
        )
        try:
            code = process.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            code = None
    finally:
        os.close(write_end)
        os.close(read_end)
    assert code == 0
    assert _updates_seen(rx, count=300) == set(range(1, 301))


# ------------------------------------------------------------------------ high 2: a slow resolver


SLOW_DNS_ADDRESS = "127.53.0.1"
SLOW_DNS_DELAY_S = 10.0
SLOW_HOST = "slow-stage-host.mer-live.test"  # answered with 127.0.0.1 after 10 s
BROKEN_HOST = "broken-stage-host.mer-live.test"  # answered with SERVFAIL after 10 s
DNS_TYPE_A = 1
DNS_NOERROR, DNS_SERVFAIL, DNS_REFUSED = 0, 2, 5
DNS_PORT = 53


class SlowDnsServer:
    """A real DNS server (UDP, port 53 of ``SLOW_DNS_ADDRESS``). After ``delay_s`` it answers an A query
    for ``SLOW_HOST`` with 127.0.0.1 (other types: no records) and any query for ``BROKEN_HOST`` with
    SERVFAIL; other names are refused at once."""

    def __init__(self, *, delay_s: float) -> None:
        self.delay_s = delay_s
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((SLOW_DNS_ADDRESS, DNS_PORT))  # PermissionError without the right to bind port 53
        self.socket.settimeout(0.1)
        self.queries: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @staticmethod
    def _question(query: bytes) -> tuple[bytes, str, int]:
        index, labels = 12, []
        while query[index]:
            length = query[index]
            labels.append(query[index + 1 : index + 1 + length].decode("ascii", "replace"))
            index += 1 + length
        end = index + 5  # the zero label, QTYPE, QCLASS
        qtype = struct.unpack(">H", query[index + 1 : index + 3])[0]
        return query[12:end], ".".join(labels), qtype

    def _answer(self, query: bytes, sender: tuple) -> None:
        question, name, qtype = self._question(query)
        rcode = {SLOW_HOST: DNS_NOERROR, BROKEN_HOST: DNS_SERVFAIL}.get(name, DNS_REFUSED)
        if rcode != DNS_REFUSED and self._stop.wait(self.delay_s):
            return
        answers = 1 if qtype == DNS_TYPE_A and rcode == DNS_NOERROR else 0
        header = query[:2] + struct.pack(">HHHHH", 0x8180 | rcode, 1, answers, 0, 0)
        record = struct.pack(">HHHIH", 0xC00C, DNS_TYPE_A, 1, 60, 4) + socket.inet_aton(LOOPBACK) if answers else b""
        try:
            self.socket.sendto(header + question + record, sender)
        except OSError:
            pass

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, sender = self.socket.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries.append((time.monotonic(), self._question(query)[1]))
            threading.Thread(target=self._answer, args=(query, sender), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.socket.close()


def _resolver_namespace(tmp_path: Path) -> tuple[str, ...]:
    """The command prefix that runs a program with /etc/resolv.conf pointing at the slow server."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"nameserver {SLOW_DNS_ADDRESS}\noptions timeout:30 attempts:1\n")
    prefix = (unshare, "--user", "--map-root-user", "--mount", "sh", "-c",
              'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(conf))
    probe = subprocess.run([*prefix, "cat", "/etc/resolv.conf"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0 or SLOW_DNS_ADDRESS not in probe.stdout:
        pytest.skip(f"cannot make a private mount namespace here: {probe.stderr.strip()}")
    return prefix


@pytest.fixture
def slow_dns():
    try:
        server = SlowDnsServer(delay_s=SLOW_DNS_DELAY_S)
    except PermissionError as error:
        pytest.skip(f"cannot bind the test DNS server to {SLOW_DNS_ADDRESS}:53 ({error}); run as root")
    yield server
    server.close()


def _run_with_slow_resolver(*, tmp_path: Path, audio: Path, host: str, receiver) -> tuple:
    """13 s of audio in real time at 10 updates/s, OSC to ``host`` (resolved by the slow server) and to
    a good local target, and a CSV. Returns (exit status, stderr, start time, good, slow, CSV rows)."""
    prefix = _resolver_namespace(tmp_path)
    good, slow = receiver(), receiver()
    csv = tmp_path / "rows.csv"
    started = time.monotonic()
    process = _start(
        "--input", str(audio), "--duration", "13", "--rate", "10",
        "--osc", f"{host}:{slow.port}", "--osc", f"{LOOPBACK}:{good.port}",
        "--no-control", "--csv", str(csv), "-q", prefix=prefix,
    )
    code, err = _finish(process, timeout=45.0)
    return code, err, started, good, slow, (_csv_rows(csv) if csv.exists() else [])


def _assert_on_time(*, good: OscReceiver, rows: list, err: str) -> None:
    """All 130 updates reached the good target and the CSV, spread over the 13 s as they were due (a
    stalled worker catches up in a burst: no long gap then, but a short span)."""
    times = good.update_times()
    assert len(times) == 130 and len(rows) == 130, (len(times), len(rows), err)
    assert np.diff(times).max() < 0.5, f"the good target waited {np.diff(times).max():.1f} s between updates"
    assert times[-1] - times[0] > 11.0, f"130 updates came within {times[-1] - times[0]:.1f} s: a burst after a stall"


@pytest.mark.slow
def test_a_10_s_dns_lookup_stalls_no_output(tmp_path: Path, audio_60s: Path, receiver, slow_dns: SlowDnsServer) -> None:
    """One --osc host whose lookup takes 10 s: the other target and the CSV get every update on time,
    the lookup happens once, in the background, and the slow target gets bundles once it resolved."""
    code, err, started, good, slow, rows = _run_with_slow_resolver(tmp_path=tmp_path, audio=audio_60s, host=SLOW_HOST, receiver=receiver)
    assert code == 0, err
    _assert_on_time(good=good, rows=rows, err=err)
    asked = [when for when, name in slow_dns.queries if name == SLOW_HOST]
    assert asked, f"the daemon never asked the slow server: {slow_dns.queries}"
    assert max(asked) - min(asked) < 1.0, f"looked up more than once: {asked}"
    slow_times = slow.update_times()
    assert slow_times, "the slow target never got a bundle, although its name resolved after 10 s"
    assert slow_times[0] - started >= SLOW_DNS_DELAY_S - 1.0
    final = _final_status(good)
    assert len(final) == 5 and final[4] > 0, final  # the updates the slow target missed while resolving


@pytest.mark.slow
def test_a_10_s_failing_dns_lookup_is_not_retried_every_update(tmp_path: Path, audio_60s: Path, receiver, slow_dns: SlowDnsServer) -> None:
    """A host whose lookup fails after 10 s (SERVFAIL): the next try waits 5 s after the failure, and
    nothing else waits at all."""
    code, err, _, good, slow, rows = _run_with_slow_resolver(tmp_path=tmp_path, audio=audio_60s, host=BROKEN_HOST, receiver=receiver)
    assert code == 0, err
    _assert_on_time(good=good, rows=rows, err=err)
    asked = [when for when, name in slow_dns.queries if name == BROKEN_HOST]
    assert asked and max(asked) - min(asked) < 1.0, f"lookups at {[round(t - asked[0], 1) for t in asked]} s"
    assert not slow.update_times()
    assert "cannot resolve" in err and BROKEN_HOST in err, err


@pytest.mark.slow
def test_a_full_receiver_socket_loses_nothing_elsewhere(tmp_path: Path, audio_10s: Path, receiver) -> None:
    """A bound receiver with the smallest socket buffer that nobody reads: the other target and the CSV
    still get all 300 updates of a --fast run."""
    full = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    full.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum (a couple of KiB)
    full.bind((LOOPBACK, 0))
    good = receiver()
    csv = tmp_path / "rows.csv"
    try:
        process = _start(
            "--input", str(audio_10s), "--fast", "--rate", "30",
            "--osc", f"{LOOPBACK}:{full.getsockname()[1]}", "--osc", f"{LOOPBACK}:{good.port}",
            "--no-control", "--csv", str(csv), "-q",
        )
        code, err = _finish(process)
    finally:
        full.close()
    assert code == 0, err
    assert _updates_seen(good, count=300) == set(range(1, 301))
    assert len(_csv_rows(csv)) == 300


# ------------------------------------------------------------------ medium 4-6: the control port


@pytest.fixture
def control():
    target = RecordingTarget()
    server = ControlServer(host=LOOPBACK, port=0, target=target)
    server.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind((LOOPBACK, 0))
    client.settimeout(0.5)
    yield server, target, client
    client.close()
    server.close()


def _replies(client: socket.socket, *, quiet_s: float = 0.5) -> tuple[int, int]:
    """(datagrams, bytes) that come back until nothing arrives for ``quiet_s``."""
    count = size = 0
    client.settimeout(quiet_s)
    while True:
        try:
            datagram = client.recv(65536)
        except socket.timeout:
            return count, size
        count, size = count + 1, size + len(datagram)


def test_a_bundle_of_thousands_of_queries_is_not_amplified(control) -> None:
    server, _, client = control
    query = build_message("/mer/query")
    bundle = build_bundle(*[query] * 3249)
    assert len(bundle) < 65507
    client.sendto(bundle, server.address)
    count, size = _replies(client)
    assert count <= 1 and size <= 2048, f"{count} replies, {size} bytes back for one datagram"


def test_ping_flood_from_another_machine_gets_capped_replies() -> None:
    """500 pings in a burst from a non-loopback peer: at most a burst of pongs comes back; a loopback
    peer (which cannot be spoofed from elsewhere) is still answered."""
    address = _non_loopback_address()
    server = ControlServer(host="0.0.0.0", port=0, target=RecordingTarget(), allow=[address])
    server.start()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind((address, 0))
    local = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    local.settimeout(2.0)
    try:
        for index in range(500):
            peer.sendto(build_message("/mer/ping", index), (address, server.port))
        count, _ = _replies(peer)
        assert 1 <= count <= 40, f"{count} pongs for 500 pings in a burst"
        local.sendto(build_message("/mer/ping", "local"), (LOOPBACK, server.port))
        assert OscPacket(local.recv(65536)).messages[0].message.params == ["local"]
    finally:
        peer.close()
        local.close()
        server.close()


def test_accepted_change_flood_is_rate_limited_in_the_log(control, caplog: pytest.LogCaptureFixture) -> None:
    server, target, client = control
    with caplog.at_level(logging.INFO, logger="mer_live"):
        client.sendto(build_bundle(*[build_message("/mer/rate", 4.0)] * 2707), server.address)
        for _ in range(300):
            client.sendto(build_message("/mer/rate", 5.0), server.address)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and server.packets_handled + server.packets_rejected < 301:
            time.sleep(0.02)
        time.sleep(0.2)
    lines = [r for r in caplog.records if r.name.startswith("mer_live")]
    assert target.rate == 5.0  # the single messages were applied
    assert len(lines) <= 10, f"{len(lines)} log lines for one flood"


def test_a_truncated_argument_is_rejected(control) -> None:
    server, target, client = control
    for datagram in (
        b"/mer/rate\x00\x00\x00,f\x00\x00A",  # 3 of the 4 bytes of a float
        b"/mer/rate\x00\x00\x00,i\x00\x00\x00\x00",  # 2 of 4 bytes of an int
        b"/mer/ping\x00\x00\x00,s\x00\x00abc",  # a string without its terminator
        b"/mer/rate\x00\x00\x00,f\x00\x00A\x00\x00\x00\x00",  # 4 bytes too many
    ):
        client.sendto(datagram, server.address)
    client.sendto(build_message("/mer/ping", "sync"), server.address)
    client.settimeout(2.0)
    assert OscPacket(client.recv(65536)).messages[0].message.params == ["sync"]
    assert target.rate == 4.0 and ("set_rate", 8.0) not in target.calls
    assert server.packets_rejected == 4


def _non_loopback_address() -> str:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        address = probe.getsockname()[0]
    except OSError:
        address = ""
    finally:
        probe.close()
    if not address or address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address to send from")
    return address


@pytest.mark.parametrize("allow, answered", [(None, False), ("{ip}/32", True), ("10.0.0.0/8,{ip}/32", True)])
def test_a_wide_bind_answers_only_allowed_peers(allow: str | None, answered: bool) -> None:
    address = _non_loopback_address()
    allowed = None if allow is None else [part.format(ip=address) for part in allow.split(",")]
    target = RecordingTarget()
    server = ControlServer(host="0.0.0.0", port=0, target=target, allow=allowed)
    server.start()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind((address, 0))
    peer.settimeout(1.0)
    try:
        peer.sendto(build_message("/mer/mute", 1), (address, server.port))
        peer.sendto(build_message("/mer/ping", "hello"), (address, server.port))
        try:
            got = OscPacket(peer.recv(65536)).messages[0].message.params
        except socket.timeout:
            got = None
        assert (got == ["hello"]) is answered
        assert target.muted is answered
        if not answered:  # loopback is still allowed by default
            local = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            local.settimeout(2.0)
            local.sendto(build_message("/mer/ping", "local"), (LOOPBACK, server.port))
            assert OscPacket(local.recv(65536)).messages[0].message.params == ["local"]
            local.close()
    finally:
        peer.close()
        server.close()


def _one_line_error(capsys: pytest.CaptureFixture, code: int, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("mer-live: error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_a_wide_control_bind_warns(capsys: pytest.CaptureFixture) -> None:
    code = daemon.main(["--demo", "--fast", "--duration", "0.5", "--no-osc", "--control", "0.0.0.0:0", "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning" in err.lower() and "0.0.0.0" in err and "--control-allow" in err, err


@pytest.mark.parametrize("spec", ["not-a-network", "10.0.0.0/33", ""])
def test_a_bad_control_allow_is_a_one_line_error(capsys: pytest.CaptureFixture, spec: str) -> None:
    code = daemon.main(["--demo", "--fast", "--duration", "0.5", "--no-osc", "--control-allow", spec, "-q"])
    _one_line_error(capsys, code, "control.allow")


# ---------------------------------------------------------------------------------- low 7-15


def _wav_with_header_rate(path: Path, *, rate: int) -> Path:
    """A valid 1 s WAV whose header then claims ``rate`` (the fmt chunk's sample and byte rates)."""
    soundfile.write(str(path), np.zeros(8000, dtype=np.int16), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"fmt "
    data[24:28] = struct.pack("<I", rate)
    data[28:32] = struct.pack("<I", min(rate * 2, 2**32 - 1))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("rate", [2_000_000_000, 50, 7999, 384_001])
def test_a_file_sample_rate_outside_8k_384k_is_a_one_line_error(tmp_path: Path, rate: int) -> None:
    path = _wav_with_header_rate(tmp_path / "odd.wav", rate=rate)
    done = subprocess.run(
        [sys.executable, "-m", "mer_live", "--input", str(path), "--fast", "--no-osc", "--no-control", "-q"],
        env=_env(), capture_output=True, text=True, timeout=30,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("mer-live: error: ") and "8000" in lines[0] and "384000" in lines[0], lines[0]


@pytest.mark.parametrize("rate", [8000, 384_000])
def test_file_sample_rates_at_the_bounds_are_accepted(tmp_path: Path, rate: int) -> None:
    source = _write_wav(tmp_path / "edge.wav", seconds=1.0, rate=rate)
    csv = tmp_path / "rows.csv"
    assert daemon.main(["--input", str(source), "--fast", "--csv", str(csv), "--no-osc", "--no-control", "-q"]) == 0
    assert [float(row[1]) for row in _csv_rows(csv)] == [0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("rate", [1000, 7999, 384_001, 768_000])
def test_a_capture_rate_outside_8k_384k_is_refused(rate: int) -> None:
    with pytest.raises(options.ConfigError, match="8000 to 384000"):
        options.resolve(toml_path=None, cli={"input": {"samplerate": rate}})


def test_long_input_and_csv_names_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture, audio_10s: Path) -> None:
    long_input = tmp_path / f"{LONG_NAME}.wav"
    code = daemon.main(["--input", str(long_input), "--no-osc", "--no-control", "-q"])
    _one_line_error(capsys, code, "too long")
    long_csv = tmp_path / f"{LONG_NAME}.csv"
    code = daemon.main(["--input", str(audio_10s), "--fast", "--csv", str(long_csv), "--no-osc", "--no-control", "-q"])
    _one_line_error(capsys, code, "--csv", "too long")


def test_analyze_keeps_the_good_result_beside_a_long_name(tmp_path: Path, capsys: pytest.CaptureFixture, audio_10s: Path) -> None:
    from mer_live import cli

    out = tmp_path / "means.csv"
    code = cli.main(["analyze", str(audio_10s), str(tmp_path / f"{LONG_NAME}.mp3"), "--csv", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "too long" in err, err
    rows = {row["file"]: row for row in csv.DictReader(out.open())}  # a bad file gets a row with its error
    assert sorted(rows) == sorted([str(audio_10s), str(tmp_path / f"{LONG_NAME}.mp3")]), rows
    assert rows[str(audio_10s)]["error"] == "" and rows[str(audio_10s)]["valence"] != ""
    assert "too long" in rows[str(tmp_path / f"{LONG_NAME}.mp3")]["error"]


@pytest.mark.parametrize("duration", ["1e308", "inf", "nan", "-1"])
def test_an_absurd_duration_is_a_one_line_error(capsys: pytest.CaptureFixture, duration: str) -> None:
    code = daemon.main(["--demo", "--fast", "--duration", duration, "--no-osc", "--no-control", "-q"])
    _one_line_error(capsys, code, "duration")


def test_a_dc_offset_without_audio_is_silent(tmp_path: Path) -> None:
    source = _write_wav(tmp_path / "dc.wav", seconds=3.0, dc=0.01)  # -40 dBFS of pure DC
    csv = tmp_path / "rows.csv"
    assert daemon.main(["--input", str(source), "--fast", "--csv", str(csv), "--no-osc", "--no-control", "-q"]) == 0
    rows = _csv_rows(csv)
    assert rows and {row[2] for row in rows} == {"silent"}, {row[2] for row in rows}
    assert all(row[4] == "" for row in rows), "values were made up from a DC offset"


def test_a_file_mixes_all_its_channels_to_mono(tmp_path: Path) -> None:
    """The decision (configs/default.toml, README): a file's mono mix takes every channel; a sound
    card's takes at most its first two inputs. Here the sound is only on channels 2 and 3."""
    frames = 3 * RATE
    audio = np.zeros((frames, 4), dtype=np.float32)
    audio[:, 2:] = (0.2 * np.sin(2 * np.pi * 220.0 * np.arange(frames) / RATE))[:, None]
    source = tmp_path / "four.wav"
    soundfile.write(str(source), audio, RATE, subtype="FLOAT")
    csv = tmp_path / "rows.csv"
    assert daemon.main(["--input", str(source), "--fast", "--csv", str(csv), "--no-osc", "--no-control", "-q"]) == 0
    assert "silent" not in {row[2] for row in _csv_rows(csv)}
    text = (PROJECT_ROOT / "configs" / "default.toml").read_text()
    assert "first two inputs" in text and "every channel" in text


def test_a_file_ending_on_an_update_boundary_has_no_duplicate_last_row(tmp_path: Path) -> None:
    source = _write_wav(tmp_path / "three.wav", seconds=3.0)  # 3.0 s: update 12 at rate 4 is the end
    csv = tmp_path / "rows.csv"
    assert daemon.main(["--input", str(source), "--fast", "--csv", str(csv), "--no-osc", "--no-control", "-q"]) == 0
    times = [float(row[1]) for row in _csv_rows(csv)]
    assert times[-1] == 3.0 and len(times) == len(set(times)) == 12, times[-3:]


def test_a_csv_fifo_is_not_fsynced(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    received = bytearray()

    def read() -> None:
        with open(fifo, "rb") as handle:
            received.extend(handle.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.1)
    code = daemon.main(["--demo", "--fast", "--duration", "1", "--csv", str(fifo), "--no-osc", "--no-control", "-q"])
    reader.join(5.0)
    err = capsys.readouterr().err
    assert code == 0 and "fsync" not in err, err
    assert received.count(b"\n") == 1 + 4, bytes(received)


def test_the_bound_control_address_is_printed_even_when_quiet(capsys: pytest.CaptureFixture) -> None:
    code = daemon.main(["--demo", "--fast", "--duration", "0.5", "--no-osc", "--control", "127.0.0.1:0", "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    (line,) = [line for line in err.splitlines() if "control port" in line]
    port = int(line.rsplit(":", 1)[1].split()[0])
    assert "127.0.0.1:" in line and port > 0, line


def test_a_zero_byte_file_says_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    code = daemon.main(["--input", str(empty), "--no-osc", "--no-control", "-q"])
    _one_line_error(capsys, code, "empty file")
    from mer_live import cli

    code = cli.main(["analyze", str(empty), "--csv", str(tmp_path / "out.csv"), "-q"])
    assert code == 2 and "empty file" in capsys.readouterr().err


def test_errno_of_long_names_is_what_the_tests_assume(tmp_path: Path) -> None:
    """The long-name cases above rely on the file system refusing names over 255 bytes."""
    with pytest.raises(OSError) as caught:
        (tmp_path / LONG_NAME).touch()
    assert caught.value.errno == errno.ENAMETOOLONG
