"""Where readings go: OSC (python-osc) and CSV.

A :class:`Reading` is what the worker hands to every sink once per update (and, as a status-only
heartbeat, at least once per second when there is no update). Values are in the 0-1 sent units of
:mod:`mer_live.labels`. No sink ever stops or delays the daemon: send errors, unresolvable hosts, a
full disk or a bad path are logged (rate-limited) and the daemon carries on. No sink blocks either:
OSC sockets and CSV FIFOs are non-blocking, and host names are resolved on a background thread. What
a sink cannot deliver it drops and counts (``delivered`` / ``dropped``, in updates); the daemon runs
every sink on its own thread behind a bounded queue (:mod:`mer_live.output`).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import socket
import stat
import struct
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import labels
from .addresses import check_prefix
from .rate_limit import RateLimitedLog
from .reading import Reading
from .settings import DEFAULT_PREFIX, OSC_FORMAT_BUNDLE, OSC_FORMAT_MESSAGES, OSC_FORMATS

LOG = logging.getLogger("mer_live")

LOG_INTERVAL_S = 10.0
RESOLVE_RETRY_S = 5.0  # after a failed lookup ends, try again this much later
CSV_REOPEN_RETRY_S = 5.0
FIFO_REOPEN_RETRY_S = 0.5  # a FIFO without a reader: look for a (new) reader this often
CSV_VALUE_DECIMALS = 6
CSV_LEVEL_DECIMALS = 2
CSV_TIME_DECIMALS = 3
CSV_COLUMNS: tuple[str, ...] = ("time", "stream_time_s", "state", "level_dbfs", *labels.EMOTIONS, *labels.MID_LEVELS)
CSV_HEADER = ",".join(CSV_COLUMNS) + "\n"


# ----------------------------------------------------------------------------------------------- OSC


def _floats(*, values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def osc_messages(*, reading: Reading, prefix: str) -> list[tuple[str, list[float | int | str]]]:
    """The ``(address, arguments)`` pairs of one reading, in sending order (see docs/OSC.md)."""
    messages: list[tuple[str, list[float | int | str]]] = [
        (
            f"{prefix}/status",
            [reading.state, float(reading.level_dbfs), int(reading.overflows), int(reading.updates), int(reading.dropped)],
        )
    ]
    if reading.muted or not reading.has_values:
        return messages
    emotion = _floats(values=reading.emotion)
    mid = _floats(values=reading.mid)
    messages.append((f"{prefix}/emotion", emotion))
    messages.append((f"{prefix}/mid", mid))
    messages.extend((f"{prefix}/emotion/{name}", [value]) for name, value in zip(labels.EMOTIONS, emotion))
    messages.extend((f"{prefix}/mid/{name}", [value]) for name, value in zip(labels.MID_LEVELS, mid))
    for index, name in enumerate(labels.EMOTIONS):
        messages.append((f"{prefix}/explain/{name}", _floats(values=reading.contributions[index])))
    messages.append((f"{prefix}/explain/bias", _floats(values=reading.bias)))
    messages.append((f"{prefix}/raw/emotion", _floats(values=reading.raw_emotion)))
    messages.append((f"{prefix}/raw/mid", _floats(values=reading.raw_mid)))
    return messages


OSC_ALIGN = 4  # OSC strings and blobs are padded with NULs to a multiple of 4 bytes
OSC_BUNDLE_HEAD = b"#bundle\x00" + struct.pack(">Q", 1)  # "#bundle", then the time tag 1: immediately
_INT32 = struct.Struct(">i")


def _osc_string(text: str) -> bytes:
    """An OSC string: UTF-8, then 1 to 4 NULs up to a multiple of 4 bytes."""
    data = text.encode("utf-8")
    return data + b"\x00" * (OSC_ALIGN - len(data) % OSC_ALIGN)


@functools.lru_cache(maxsize=256)
def _osc_head(address: str, tags: str) -> bytes:
    """Address and type tag string of a message (the same few dozen for every reading: cached)."""
    return _osc_string(address) + _osc_string("," + tags)


def osc_message(*, address: str, arguments: list[float | int | str]) -> bytes:
    """One OSC 1.0 message datagram: strings as ``s``, ints as ``i`` (int32), anything else as ``f``
    (float32), big-endian; byte for byte what python-osc's ``OscMessageBuilder`` gives (tested), without
    its parse of the datagram it has just built."""
    tags = "".join("s" if isinstance(a, str) else "i" if isinstance(a, int) else "f" for a in arguments)
    if tags == "f" * len(arguments):
        return _osc_head(address, tags) + struct.pack(f">{len(arguments)}f", *arguments)
    body = [
        _osc_string(a) if tag == "s" else _INT32.pack(a) if tag == "i" else struct.pack(">f", a)
        for tag, a in zip(tags, arguments)
    ]
    return _osc_head(address, tags) + b"".join(body)


def osc_packets(*, reading: Reading, prefix: str, fmt: str) -> list[bytes]:
    """The datagrams of one reading: one bundle (immediate time tag) or one datagram per message."""
    messages = [osc_message(address=address, arguments=arguments) for address, arguments in osc_messages(reading=reading, prefix=prefix)]
    if fmt == OSC_FORMAT_MESSAGES:
        return messages
    return [OSC_BUNDLE_HEAD + b"".join(_INT32.pack(len(message)) + message for message in messages)]


class _UdpTarget:
    """One receiver, with a non-blocking socket. A numeric host is used as is; a host name is looked
    up on a background thread (again ``RESOLVE_RETRY_S`` after a failed lookup has ended), so a slow
    resolver never delays a send. Updates that cannot go (not resolved yet, send error, full socket
    buffer) are dropped and counted."""

    def __init__(self, *, host: str, port: int, log: RateLimitedLog) -> None:
        self.host = host
        self.port = port
        self._log = log
        self._lock = threading.Lock()
        self._resolved: tuple[socket.socket, tuple] | None = None
        self._resolver: threading.Thread | None = None
        self._next_resolve = 0.0
        self._closed = False
        self.delivered = 0
        self.dropped = 0
        numeric = self._lookup(flags=socket.AI_NUMERICHOST)
        if numeric is not None:
            self._resolved = numeric
        else:
            self._resolve_in_background()

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    def _lookup(self, *, flags: int = 0) -> tuple[socket.socket, tuple] | None:
        """``getaddrinfo`` and a socket for the first answer; None (logged unless numeric-only) if it fails."""
        try:
            family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM, flags=flags)[0]
            sock = socket.socket(family, kind, proto)
        except (OSError, UnicodeError) as error:  # UnicodeError: a host name IDNA cannot encode
            if not flags:
                self._log.log(key=f"resolve {self.label}", message=f"OSC target {self.label}: cannot resolve/open ({error}); retrying")
            return None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock, address

    def _resolve_in_background(self) -> None:
        with self._lock:
            if self._closed or (self._resolver is not None and self._resolver.is_alive()):
                return
            if time.monotonic() < self._next_resolve:
                return
            self._resolver = threading.Thread(target=self._resolve, name=f"mer-live-resolve {self.label}", daemon=True)
            self._resolver.start()

    def _resolve(self) -> None:
        found = self._lookup()
        with self._lock:
            if found is not None and not self._closed:
                self._resolved, found = found, None
            else:
                self._next_resolve = time.monotonic() + RESOLVE_RETRY_S  # taken after the lookup ended
        if found is not None:  # closed meanwhile
            found[0].close()

    def send(self, *, packets: list[bytes], count: bool) -> None:
        """Send the datagrams of one reading; ``count``: it is an update (counted delivered/dropped)."""
        resolved = self._resolved
        if resolved is None:
            self._resolve_in_background()
            self.dropped += int(count)
            return
        sock, address = resolved
        try:
            for packet in packets:
                sock.sendto(packet, address)
        except OSError as error:  # BlockingIOError: the socket buffer is full
            self.dropped += int(count)
            self._log.log(key=f"send {self.label}", message=f"OSC send to {self.label} failed ({error}); dropped, carrying on")
            return
        self.delivered += int(count)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            resolved, self._resolved = self._resolved, None
        if resolved is not None:
            resolved[0].close()


class OscSink:
    """Sends each reading to every target as one OSC bundle (or plain messages), never blocking."""

    def __init__(self, *, targets: list[tuple[str, int]], prefix: str = DEFAULT_PREFIX, fmt: str = OSC_FORMAT_BUNDLE) -> None:
        if fmt not in OSC_FORMATS:
            raise ValueError(f"OSC format {fmt!r}: use one of {', '.join(OSC_FORMATS)}")
        self.prefix = check_prefix(prefix=prefix)
        self.fmt = fmt
        self._log = RateLimitedLog(logger=LOG, window_s=LOG_INTERVAL_S)
        self._targets = [_UdpTarget(host=host, port=port, log=self._log) for host, port in targets]
        self.name = "OSC " + " ".join(target.label for target in self._targets)

    @property
    def delivered(self) -> int:
        """Updates sent (to every target: summed over the targets)."""
        return sum(target.delivered for target in self._targets)

    @property
    def dropped(self) -> int:
        """Updates not sent (summed over the targets)."""
        return sum(target.dropped for target in self._targets)

    def process(self, *, reading: Reading) -> None:
        packets = osc_packets(reading=reading, prefix=self.prefix, fmt=self.fmt)
        for target in self._targets:
            target.send(packets=packets, count=reading.is_update)

    def close(self) -> None:
        for target in self._targets:
            target.close()


# ----------------------------------------------------------------------------------------------- CSV


class CsvPathError(ValueError):
    """A ``--csv`` path that cannot be used (one line, for the user to fix)."""


class CsvHeaderError(CsvPathError):
    """An existing CSV file whose header is not mer-live's."""


def _format_value(*, value: float) -> str:
    return f"{float(value):.{CSV_VALUE_DECIMALS}f}"


def csv_row(*, reading: Reading) -> str:
    """One CSV line (with its newline) for ``reading``; value cells are empty before the first reading."""
    wall = datetime.fromtimestamp(reading.wall_time, tz=timezone.utc).isoformat(timespec="milliseconds")
    cells = [
        wall,
        f"{reading.stream_time_s:.{CSV_TIME_DECIMALS}f}",
        reading.state,
        f"{reading.level_dbfs:.{CSV_LEVEL_DECIMALS}f}",
    ]
    if reading.has_values:
        cells.extend(_format_value(value=v) for v in reading.emotion)
        cells.extend(_format_value(value=v) for v in reading.mid)
    else:
        cells.extend([""] * (labels.NUM_EMOTIONS + labels.NUM_MID_LEVELS))
    return ",".join(cells) + "\n"


def check_csv_header(*, path: Path) -> None:
    """Raise :class:`CsvHeaderError` when ``path`` exists, is not empty and has another header, and
    :class:`CsvPathError` when its name is too long for the file system."""
    try:
        regular = path.is_file()
    except OSError as error:  # ENAMETOOLONG and friends: is_file() only hides "does not exist"
        raise CsvPathError(f"--csv {path}: {error.strerror.lower()}; pass a shorter --csv path") from error
    if not regular:
        return  # missing (created later) or not a regular file (e.g. a pipe or /dev/null): nothing to check
    try:
        with open(path, "rb") as handle:
            first = handle.readline(len(CSV_HEADER) + 1)
    except OSError:
        return  # unreadable: the sink logs it when it tries to open the file
    if first and first.decode("utf-8", errors="replace") != CSV_HEADER:
        raise CsvHeaderError(
            f"{path}: existing file's header is not mer-live's ({first[:60]!r}...); "
            "pass another --csv path or move the file away"
        )


def _truncate(*, fd: int, size: int) -> None:
    """Cut the file back to ``size`` bytes (best effort)."""
    try:
        os.ftruncate(fd, size)
    except OSError as error:
        LOG.debug("CSV: cannot roll back a failed write (%s)", error.strerror)


class CsvSink:
    """Appends one row per update to ``path``: a single ``write`` each, so rows are whole or absent.

    The file is opened with ``O_APPEND``; a new or empty file gets the header; an existing one must have
    mer-live's header (checked by :func:`check_csv_header`, which the constructor calls). A trailing
    partial line (from a crash of something else) is cut off on opening. Writes go straight to the
    kernel (no user-space buffer), so nothing is lost when the process is killed. A failed or short
    write (full disk) is rolled back to the previous length and logged; a path that cannot be opened is
    logged and retried every few seconds.

    The path may be a FIFO (or another pipe-like file): it is opened and written non-blocking. With no
    reader yet, the open is retried every ``FIFO_REOPEN_RETRY_S``; when the reader does not keep up, the
    rows that do not fit into the pipe are dropped (a row is shorter than ``PIPE_BUF``, so it goes whole
    or not at all); when the reader goes away, the pipe is let go and the next reader gets the header
    and the rows from then on. Every row not written is counted in :attr:`dropped`.
    """

    def __init__(self, *, path: str | Path) -> None:
        self.path = Path(path)
        check_csv_header(path=self.path)
        self.name = f"CSV {self.path}"
        self._log = RateLimitedLog(logger=LOG, window_s=LOG_INTERVAL_S)
        self._fd: int | None = None
        self._regular = True
        self._next_open = 0.0
        self.rows_written = 0
        self.dropped = 0
        self._open()

    @property
    def delivered(self) -> int:
        """Rows written."""
        return self.rows_written

    def _open(self) -> bool:
        now = time.monotonic()
        if now < self._next_open:
            return False
        try:
            # O_NONBLOCK: opening a FIFO with no reader fails at once (ENXIO, retried) instead of
            # blocking, and writing to a full pipe fails (EAGAIN, the row is dropped) instead of
            # blocking; regular files ignore the flag
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
        except OSError as error:
            no_reader = error.errno == errno.ENXIO
            self._next_open = now + (FIFO_REOPEN_RETRY_S if no_reader else CSV_REOPEN_RETRY_S)
            reason = "no reader on the FIFO yet" if no_reader else error.strerror
            self._log.log(key="open", message=f"CSV {self.path}: cannot open ({reason}); rows are not logged until it can")
            return False
        try:
            status = os.fstat(fd)
            self._regular = stat.S_ISREG(status.st_mode)
            size = status.st_size if self._regular else 0
            if size == 0:
                self._write_all(fd=fd, data=CSV_HEADER.encode())
            else:
                self._cut_partial_line(fd=fd, size=size)
        except OSError as error:
            os.close(fd)
            self._next_open = now + CSV_REOPEN_RETRY_S
            self._log.log(key="open", message=f"CSV {self.path}: cannot prepare ({error.strerror}); retrying")
            return False
        self._fd = fd
        return True

    def _cut_partial_line(self, *, fd: int, size: int) -> None:
        with open(self.path, "rb") as handle:
            handle.seek(max(0, size - 1))
            if handle.read(1) == b"\n":
                return
            handle.seek(0)
            content = handle.read()
        keep = content.rfind(b"\n") + 1
        os.ftruncate(fd, keep)
        LOG.warning("CSV %s: cut off a partial last line (%d bytes)", self.path, size - keep)

    def _write_all(self, *, fd: int, data: bytes) -> None:
        """One ``write``; on a regular file a failed or short write is rolled back (no partial line);
        raised as OSError. (A pipe takes a row whole or not at all: rows are shorter than PIPE_BUF.)"""
        before = os.fstat(fd).st_size if self._regular else 0
        try:
            written = os.write(fd, data)
        except OSError:
            if self._regular:
                _truncate(fd=fd, size=before)
            raise
        if written != len(data):
            if self._regular:
                _truncate(fd=fd, size=before)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def _let_go(self) -> None:
        """Close a pipe whose reader has gone; the next open finds the next reader."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self._next_open = time.monotonic() + FIFO_REOPEN_RETRY_S

    def process(self, *, reading: Reading) -> None:
        if not reading.is_update:
            return
        if self._fd is None and not self._open():
            self.dropped += 1
            return
        try:
            self._write_all(fd=self._fd, data=csv_row(reading=reading).encode())
            self.rows_written += 1
        except BlockingIOError:
            self.dropped += 1
            self._log.log(key="full", message=f"CSV {self.path}: the reader is not keeping up; rows dropped, carrying on")
        except OSError as error:
            self.dropped += 1
            if error.errno == errno.EPIPE:
                self._let_go()
                self._log.log(key="gone", message=f"CSV {self.path}: the reader went away; rows dropped until one opens it again")
            else:
                self._log.log(key="write", message=f"CSV {self.path}: write failed ({error.strerror}); row dropped, carrying on")

    def close(self) -> None:
        if self._fd is None:
            return
        if self._regular:  # a pipe or a device has nothing to sync (fsync fails with EINVAL)
            try:
                os.fsync(self._fd)
            except OSError as error:
                LOG.warning("CSV %s: fsync failed (%s)", self.path, error.strerror)
        os.close(self._fd)
        self._fd = None
