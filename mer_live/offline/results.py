"""Resumable results of ``mer-live analyze``: a crash-safe journal, rendered to Parquet and CSV.

Every finished file is appended to the journal (``<output>.journal``, JSON lines, one line per file,
flushed at once, floats stored exactly) as soon as it is done. The outputs are rendered from the journal
at the end of a run, each through a temporary file that replaces the old one. So after ``kill -9`` the
journal holds every file finished before the kill (a torn last line is dropped), and the next run on the
same output skips them: nothing lost, nothing duplicated. Files are keyed by absolute path, size and
mtime; a changed file is analysed again and its new line replaces the old. Files that failed are tried
again. Keep the journal to resume or extend a catalogue; delete it (and the outputs) to start over.

Per-file rows: ``FILE_COLUMNS`` then the 15 means and the 15 stds (``<name>_std``); per-window rows:
``WINDOW_COLUMNS`` then the 15 values. Rows are sorted by path (and window), whatever the job count.
Parquet needs pyarrow (``pip install 'mer-live[parquet]'``); CSV does not.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from mer_live.offline.catalogue import NO_KEY, FileKey, FileResult, WindowValues
from mer_live.offline.recipe import VALUE_NAMES

JOURNAL_SUFFIX = ".journal"
TEMPORARY_SUFFIX = ".tmp"
FSYNC_INTERVAL_S = 2.0
FLOAT_FORMAT = "{:.6f}"
PARQUET_ROWS_PER_GROUP = 65536
STD_SUFFIX = "_std"
FILE_COLUMNS = ("file", "size_bytes", "mtime_ns", "duration_s", "num_windows", "padded", "model",
                "model_version", "error")
WINDOW_COLUMNS = ("file", "window", "start_s", "end_s", "padded", "model", "model_version")
FILE_HEADER = FILE_COLUMNS + VALUE_NAMES + tuple(name + STD_SUFFIX for name in VALUE_NAMES)
WINDOW_HEADER = WINDOW_COLUMNS + VALUE_NAMES


class ResultsError(RuntimeError):
    """An output or journal that cannot be written or read."""


def to_record(result: FileResult) -> dict:
    """A JSON-able record of ``result`` (NaN as null)."""
    def floats(values: np.ndarray) -> list[float | None]:
        return [None if math.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64).ravel()]

    record = {
        "file": result.key.path, "size_bytes": result.key.size_bytes, "mtime_ns": result.key.mtime_ns,
        "ctime_ns": result.key.ctime_ns,
        "duration_s": None if math.isnan(result.duration_s) else result.duration_s,
        "num_windows": result.num_windows, "padded": result.padded, "model": result.model,
        "model_version": result.model_version, "error": result.error,
        "mean": floats(result.mean), "std": floats(result.std),
    }
    if result.windows is not None:
        record["windows"] = {
            "start_s": floats(result.windows.starts_s), "end_s": floats(result.windows.ends_s),
            "padded": [bool(p) for p in result.windows.padded],
            "values": [floats(row) for row in result.windows.values],
        }
    return record


def _key(record: dict) -> FileKey:
    return FileKey(path=record["file"], size_bytes=record["size_bytes"], mtime_ns=record["mtime_ns"],
                   ctime_ns=record.get("ctime_ns", NO_KEY))


def from_record(record: dict) -> FileResult:
    """The :class:`FileResult` of a journal record (the inverse of :func:`to_record`)."""
    def array(values: list) -> np.ndarray:
        return np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)

    windows = None
    if "windows" in record:
        w = record["windows"]
        windows = WindowValues(
            starts_s=array(w["start_s"]), ends_s=array(w["end_s"]), padded=np.asarray(w["padded"], dtype=bool),
            values=np.asarray(w["values"], dtype=np.float64).reshape(-1, len(VALUE_NAMES)),
        )
    return FileResult(
        key=_key(record),
        model=record["model"], model_version=record["model_version"],
        duration_s=math.nan if record["duration_s"] is None else record["duration_s"],
        num_windows=record["num_windows"], padded=record["padded"], mean=array(record["mean"]),
        std=array(record["std"]), error=record["error"], windows=windows,
    )


class Journal:
    """The append-only JSON-lines journal of finished files (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None
        self._last_sync = 0.0
        self._latest: dict[str, tuple[FileKey, int, bool, bool]] = {}  # path -> (key, offset, ok, windows)
        self._scan()

    def _scan(self) -> None:
        """Index the complete lines; cut a torn last line (a write that a kill interrupted)."""
        if not self.path.exists():
            return
        offset = 0
        with self.path.open("rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line) if line.endswith(b"\n") else None
                except ValueError:
                    record = None
                if record is None:
                    break
                ok = not record["error"]
                self._latest[record["file"]] = (_key(record), offset, ok, "windows" in record)
                offset += len(line)
        if offset != self.path.stat().st_size:
            with self.path.open("r+b") as handle:
                handle.truncate(offset)

    def is_done(self, key: FileKey, *, with_windows: bool) -> bool:
        """Whether ``key`` (this path, size and mtime) finished without error (with per-window values if
        ``with_windows``)."""
        latest = self._latest.get(key.path)
        return latest is not None and latest[0].same_file(key) and latest[2] and (latest[3] or not with_windows)

    def append(self, result: FileResult) -> None:
        """Record ``result``: one line, written to the OS at once (survives kill -9), fsync-ed at most
        every ``FSYNC_INTERVAL_S`` and at :meth:`close`. A write that fails (a full disk) is cut back to
        the last whole line and raised as :class:`ResultsError`."""
        line = json.dumps(to_record(result), separators=(",", ":"), allow_nan=False).encode() + b"\n"
        try:
            if self._handle is None:
                self._handle = self.path.open("ab", buffering=0)  # unbuffered: nothing left to flush later
            offset = self._handle.seek(0, os.SEEK_END)
            try:
                view = memoryview(line)
                while view:
                    view = view[self._handle.write(view) :]
                if time.monotonic() - self._last_sync >= FSYNC_INTERVAL_S:
                    os.fsync(self._handle.fileno())
                    self._last_sync = time.monotonic()
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._handle.fileno(), offset)
                raise
        except OSError as error:
            raise ResultsError(f"cannot write the journal {self.path} ({error.strerror or error})") from error
        self._latest[result.key.path] = (result.key, offset, not result.error, result.windows is not None)

    def results(self) -> Iterator[FileResult]:
        """The latest result of every path, sorted by path, read one at a time."""
        with self.path.open("rb") as handle:
            for path in sorted(self._latest):
                handle.seek(self._latest[path][1])
                yield from_record(json.loads(handle.readline()))

    def close(self) -> None:
        """Sync and close; raises :class:`ResultsError` if the sync fails (the lines are written already)."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            try:
                os.fsync(handle.fileno())
            except OSError as error:
                raise ResultsError(f"cannot write the journal {self.path} ({error.strerror or error})") from error
            finally:
                handle.close()


def _file_row(result: FileResult) -> list:
    key = result.key
    return [key.path, key.size_bytes, key.mtime_ns, result.duration_s, result.num_windows, result.padded,
            result.model, result.model_version, result.error, *result.mean.tolist(), *result.std.tolist()]


def _window_rows(result: FileResult) -> Iterator[list]:
    windows = result.windows
    if windows is None:
        return
    for index in range(len(windows.starts_s)):
        yield [result.key.path, index, float(windows.starts_s[index]), float(windows.ends_s[index]),
               bool(windows.padded[index]), result.model, result.model_version, *windows.values[index].tolist()]


def _csv_text(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else FLOAT_FORMAT.format(value)
    return str(value)


class _CsvOutput:
    def __init__(self, path: Path | None, header: tuple[str, ...]) -> None:
        self.path = path
        self.temporary = None if path is None else path.with_name(path.name + TEMPORARY_SUFFIX)
        self._handle = sys.stdout if self.temporary is None else self.temporary.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(header)

    def write(self, rows: Iterator[list]) -> None:
        self._writer.writerows([_csv_text(v) for v in row] for row in rows)

    def finish(self) -> None:
        if self.temporary is None:
            self._handle.flush()
            return
        self._handle.close()
        self.temporary.replace(self.path)

    def abandon(self) -> None:
        """After a failure: close and remove the temporary file (the old output stays)."""
        if self.temporary is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self.temporary.unlink(missing_ok=True)


class _ParquetOutput:
    def __init__(self, path: Path, header: tuple[str, ...], types: dict[str, str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self.path = path
        self.temporary = path.with_name(path.name + TEMPORARY_SUFFIX)
        pa_types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
        self._schema = pa.schema([(name, pa_types[types.get(name, "float")]) for name in header])
        try:
            self._writer = pq.ParquetWriter(str(self.temporary), self._schema)
        except OSError:  # created, then full: leave nothing behind
            self.temporary.unlink(missing_ok=True)
            raise
        self._rows: list[list] = []

    def write(self, rows: Iterator[list]) -> None:
        self._rows.extend(rows)
        if len(self._rows) >= PARQUET_ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            columns = list(zip(*self._rows))
            self._writer.write_table(self._pa.Table.from_arrays(
                [self._pa.array(list(c), type=f.type, from_pandas=True) for c, f in zip(columns, self._schema)],
                schema=self._schema,
            ))
            self._rows = []

    def finish(self) -> None:
        self._flush()
        self._writer.close()
        self.temporary.replace(self.path)

    def abandon(self) -> None:
        """After a failure: close and remove the temporary file (the old output stays)."""
        with contextlib.suppress(Exception):  # noqa: BLE001 - pyarrow's writer may fail again on closing
            self._writer.close()
        self.temporary.unlink(missing_ok=True)


FILE_TYPES = {"file": "str", "size_bytes": "int", "mtime_ns": "int", "num_windows": "int", "padded": "bool",
              "model": "str", "model_version": "str", "error": "str"}
WINDOW_TYPES = {"file": "str", "window": "int", "padded": "bool", "model": "str", "model_version": "str"}


def _output(path: Path | None, *, header: tuple[str, ...], types: dict[str, str]) -> _CsvOutput | _ParquetOutput:
    if path is not None and path.suffix.lower() == ".parquet":
        return _ParquetOutput(path, header, types)
    return _CsvOutput(path, header)


def parquet_available() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def render(journal: Journal, *, file_outputs: list[Path | None], window_outputs: list[Path]) -> None:
    """Write every output from the journal (Parquet for ``.parquet`` paths, else CSV; ``None`` is CSV on
    stdout), each through a temporary file, streaming one file's results at a time."""
    outputs: list[tuple[_CsvOutput | _ParquetOutput, bool]] = []
    try:
        for paths, header, types, per_window in ((file_outputs, FILE_HEADER, FILE_TYPES, False),
                                                 (window_outputs, WINDOW_HEADER, WINDOW_TYPES, True)):
            for path in paths:
                outputs.append((_output(path, header=header, types=types), per_window))
        if journal.path.exists():
            for result in journal.results():
                for output, per_window in outputs:
                    output.write(_window_rows(result) if per_window else iter([_file_row(result)]))
        for output, _ in outputs:
            output.finish()
    except OSError as error:  # a full disk: no temporary file is left behind
        for output, _ in outputs:
            output.abandon()
        raise ResultsError(f"cannot write the results ({error})") from error
