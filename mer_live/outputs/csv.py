"""Readings as CSV rows: a rehearsal log (``--csv``), or a FIFO that another program reads.

No sink ever stops or delays the daemon: a full disk or a bad path is logged (rate-limited) and the
daemon carries on; a FIFO is written non-blocking. What the sink cannot deliver it drops and counts
(``delivered`` / ``dropped``, in updates); the daemon runs every sink on its own thread behind a bounded
queue (:mod:`mer_live.outputs.base`).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mer_live.core import labels
from mer_live.core.exit_codes import UsageError
from mer_live.core.fields import setting
from mer_live.core.rate_limit import RateLimitedLog
from mer_live.core.reading import Reading
from mer_live.outputs.base import LOG_INTERVAL_S, SinkContext
from mer_live.outputs.registry import OutputSpec

LOG = logging.getLogger("mer_live")

CSV_REOPEN_RETRY_S = 5.0
FIFO_REOPEN_RETRY_S = 0.5  # a FIFO without a reader: look for a (new) reader this often
CSV_VALUE_DECIMALS = 6
CSV_LEVEL_DECIMALS = 2
CSV_TIME_DECIMALS = 3
CSV_COLUMNS: tuple[str, ...] = ("time", "stream_time_s", "state", "level_dbfs", *labels.EMOTIONS, *labels.MID_LEVELS)
CSV_HEADER = ",".join(CSV_COLUMNS) + "\n"


@dataclass(frozen=True)
class CsvSettings:
    """``[csv]``: the CSV log."""

    path: str = setting("", help="append one row per update to this CSV file", flag="--csv", metavar="PATH", default_help="none")


def open_flags() -> int:
    """The flags the CSV file is opened with, on this platform.

    ``O_NONBLOCK`` (POSIX): opening a FIFO with no reader fails at once (ENXIO, retried) instead of
    blocking, and writing to a full pipe fails (EAGAIN, the row is dropped) instead of blocking; regular
    files ignore it. Windows has no such flag and no POSIX FIFOs: there ``--csv`` names a regular file,
    which is written the same way (a Windows named pipe, ``\\\\.\\pipe\\NAME``, could block, and is not
    supported). ``O_BINARY`` (Windows only): without it the C runtime opens in text mode and writes
    ``\\r\\n`` for ``\\n``, which would break the byte counts that keep rows whole."""
    return os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


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
    write (full disk) is rolled back to the previous length and logged. A path that cannot be opened
    or written at start is a :class:`CsvPathError` (one line, exit 2); later it is logged and retried
    every few seconds.

    Before each row the file at the path is checked to be still the one open: a log deleted, rotated
    (renamed away) or replaced mid-run is reopened at its path, with a header, and the change logged,
    so no row goes to a file nobody can see. A file that is not mer-live's (another header) put at the
    path is never written to: rows are dropped and counted until it is moved away.

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
        self._identity: tuple[int, int] | None = None  # (device, inode) of the open regular file
        self._gap: str | None = None  # why the path was let go (deleted, replaced), until it is reopened
        self._gap_dropped = 0
        self.rows_written = 0
        self.dropped = 0
        self.problem = ""  # why rows could not be written, last time (for the log)
        self._open(at_start=True)

    @property
    def delivered(self) -> int:
        """Rows written."""
        return self.rows_written

    def _open(self, *, at_start: bool = False) -> bool:
        """Open the path (a new or empty file gets the header); False (logged) if it cannot be opened
        now; at start a path that cannot be opened (but a FIFO without a reader) raises CsvPathError."""
        now = time.monotonic()
        if now < self._next_open:
            return False
        try:
            fd = os.open(self.path, open_flags(), 0o644)
        except OSError as error:
            no_reader = error.errno == errno.ENXIO
            self._next_open = now + (FIFO_REOPEN_RETRY_S if no_reader else CSV_REOPEN_RETRY_S)
            reason = "no reader on the FIFO yet" if no_reader else error.strerror
            if at_start and not no_reader:
                raise CsvPathError(f"--csv {self.path}: cannot open it ({error.strerror}); pass a path you can write to") from error
            self.problem = f"cannot open {self.path} ({reason})"
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
            if at_start:
                raise CsvPathError(f"--csv {self.path}: cannot write to it ({error.strerror}); pass a path you can write to") from error
            self._next_open = now + CSV_REOPEN_RETRY_S
            self.problem = f"cannot write to {self.path} ({error.strerror})"
            self._log.log(key="open", message=f"CSV {self.path}: cannot prepare ({error.strerror}); retrying")
            return False
        self._fd = fd
        self._identity = (status.st_dev, status.st_ino) if self._regular else None
        return True

    def _still_there(self) -> bool:
        """Whether the open file is still the one at the path; if not, it is let go (and logged)."""
        if self._identity is None:
            return True
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            change = "deleted or renamed away"
        except OSError:
            return True  # cannot tell (e.g. the folder is unreadable now): keep writing to the open file
        else:
            if (status.st_dev, status.st_ino) == self._identity:
                return True
            change = "replaced by another file"
        os.close(self._fd)
        self._fd, self._identity, self._next_open = None, None, 0.0
        self._gap, self._gap_dropped = change, 0
        LOG.warning("CSV %s was %s after %d row(s); reopening it at its path with a header", self.path, change, self.rows_written)
        return False

    def _reopen(self) -> bool:
        """Open the path again after a gap; a foreign file now at the path is left alone."""
        if time.monotonic() < self._next_open:
            return False
        if self._gap is not None:
            try:
                check_csv_header(path=self.path)
            except CsvPathError as error:
                self._next_open = time.monotonic() + CSV_REOPEN_RETRY_S
                self.problem = f"the file now at {self.path} is not mer-live's log; not writing into it"
                self._log.log(key="foreign", message=f"CSV {error}; rows dropped until it is moved away")
                return False
        if not self._open():
            return False
        if self._gap is not None:
            LOG.warning("CSV %s reopened (it was %s); %d row(s) dropped in the gap", self.path, self._gap, self._gap_dropped)
            self._gap = None
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
        if self._fd is not None:
            self._still_there()
        if self._fd is None and not self._reopen():
            self.dropped += 1
            self._gap_dropped += 1
            return
        try:
            self._write_all(fd=self._fd, data=csv_row(reading=reading).encode())
            self.rows_written += 1
        except BlockingIOError:
            self.dropped += 1
            self.problem = "the reader is not keeping up"
            self._log.log(key="full", message=f"CSV {self.path}: the reader is not keeping up; rows dropped, carrying on")
        except OSError as error:
            self.dropped += 1
            self.problem = f"write failed ({error.strerror})"
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


def make_sinks(settings: CsvSettings, *, context: SinkContext) -> list[CsvSink]:
    if not settings.path:
        return []
    try:
        return [CsvSink(path=settings.path)]
    except CsvPathError as error:
        raise UsageError(str(error)) from error


def describe(settings: CsvSettings) -> list[str]:
    return [f"CSV {settings.path}"] if settings.path else []


OUTPUT = OutputSpec(name="csv", settings=CsvSettings, make=make_sinks, describe=describe, order=20)
