"""A catalogue of audio files through a model: file discovery, per-file analysis and a process pool.

Model-agnostic: the model-specific part is a :class:`mer_live.offline.recipe.Recipe` and its
:class:`mer_live.offline.recipe.WindowModel`. A file is decoded in blocks (:class:`mer_live.audio.FileDecoder`), its
front-end turns the blocks into batches of windows, and each batch is one model call; per-file statistics
are accumulated window by window, so memory does not grow with the file's length (per-window values are
kept only when asked for), and the values do not depend on the batch size or the number of jobs.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from mer_live.audio import AudioFileError, FileDecoder
from mer_live.offline.recipe import DEFAULT_BATCH_WINDOWS, NUM_VALUES, Recipe, WindowModel

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")
PARENT_CHECK_S = 1.0  # a pool worker whose parent has gone (killed) ends itself within this
IN_FLIGHT_PER_JOB = 2  # files queued per worker, so that a worker never waits and the queue stays short
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
NO_KEY = -1


@dataclass(frozen=True)
class FileKey:
    """What identifies one analysed version of a file: its absolute path, size, modification time and
    status-change time. The last catches a file restored with its old size and mtime (``cp -p``,
    ``rsync -t``, a backup): they can be set back, ``ctime`` cannot. ``NO_KEY``: not known (a journal
    written before ``ctime_ns`` was kept, which then matches on the other three)."""

    path: str
    size_bytes: int
    mtime_ns: int
    ctime_ns: int = -1

    def same_file(self, other: FileKey) -> bool:
        """Whether ``other`` is this version of the file (an unknown ctime matches any)."""
        ctime_known = NO_KEY not in (self.ctime_ns, other.ctime_ns)
        return (self.path, self.size_bytes, self.mtime_ns) == (other.path, other.size_bytes, other.mtime_ns) and (
            not ctime_known or self.ctime_ns == other.ctime_ns
        )


def file_key(path: Path) -> FileKey:
    """The key of ``path`` now (size and mtime are ``NO_KEY`` if it cannot be stat-ed)."""
    absolute = os.path.abspath(path)
    try:
        stat = os.stat(absolute)
    except OSError:
        return FileKey(path=absolute, size_bytes=NO_KEY, mtime_ns=NO_KEY)
    return FileKey(path=absolute, size_bytes=int(stat.st_size), mtime_ns=int(stat.st_mtime_ns), ctime_ns=int(stat.st_ctime_ns))


def find_files(
    paths: Iterable[Path], *, extensions: tuple[str, ...] = AUDIO_EXTENSIONS, problems: list[str] | None = None
) -> list[Path]:
    """Files named directly, in order, then the audio files under each directory, walked recursively in
    sorted order and filtered by ``extensions`` (case-insensitive). Duplicates are dropped.

    Linked folders are followed, each real folder walked once (a link back up is not a loop). A folder
    that cannot be read is not skipped silently: its one-line reason goes to ``problems``.
    """
    wanted = tuple(extension.lower() for extension in extensions)
    found: list[Path] = []
    walked: set[str] = set()

    def unreadable(error: OSError) -> None:
        if problems is not None:
            problems.append(f"{error.filename}: cannot read the folder ({(error.strerror or str(error)).lower()})")

    for path in paths:
        if os.path.isdir(path):  # False for any name the OS refuses (e.g. too long)
            for folder, folders, names in os.walk(path, onerror=unreadable, followlinks=True):
                walked.add(os.path.realpath(folder))
                folders[:] = [name for name in sorted(folders) if os.path.realpath(os.path.join(folder, name)) not in walked]
                found.extend(Path(folder) / name for name in sorted(names) if name.lower().endswith(wanted))
        else:
            found.append(path)
    unique = dict.fromkeys(os.path.abspath(p) for p in found)
    return [Path(p) for p in unique]


@dataclass
class WindowValues:
    """Per-window output of one file: ``starts_s``, ``ends_s`` ``(num_windows,)``, ``padded``
    ``(num_windows,)`` bool and ``values`` ``(num_windows, NUM_VALUES)``."""

    starts_s: np.ndarray
    ends_s: np.ndarray
    padded: np.ndarray
    values: np.ndarray


@dataclass
class FileResult:
    """One file's analysis. ``mean`` and ``std`` ``(NUM_VALUES,)`` are over its windows (population
    std); ``error`` is set (and the values are NaN) when the file could not be analysed."""

    key: FileKey
    model: str
    model_version: str
    duration_s: float = math.nan
    num_windows: int = 0
    padded: bool = False
    mean: np.ndarray = field(default_factory=lambda: np.full(NUM_VALUES, np.nan))
    std: np.ndarray = field(default_factory=lambda: np.full(NUM_VALUES, np.nan))
    error: str = ""
    windows: WindowValues | None = None


class RunningStats:
    """Mean and population std of value vectors, added one window at a time (Welford), so the result does
    not depend on how the windows were batched."""

    def __init__(self) -> None:
        self.count = 0
        self._mean = np.zeros(NUM_VALUES)
        self._m2 = np.zeros(NUM_VALUES)

    def process(self, values: np.ndarray) -> None:
        """Add ``values`` ``(batch, NUM_VALUES)``, row by row."""
        for row in values:
            self.count += 1
            delta = row - self._mean
            self._mean = self._mean + delta / self.count
            self._m2 = self._m2 + delta * (row - self._mean)

    @property
    def mean(self) -> np.ndarray:
        return self._mean.copy() if self.count else np.full(NUM_VALUES, np.nan)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self._m2 / self.count) if self.count else np.full(NUM_VALUES, np.nan)


def window_ends(*, starts_s: np.ndarray, duration_s: float, span_s: float) -> np.ndarray:
    """Each window's end: ``span_s`` after its start, but not after the end of the file."""
    return np.minimum(starts_s + span_s, np.maximum(duration_s, starts_s))


def analyse_file(
    path: Path,
    *,
    model: WindowModel,
    recipe: Recipe,
    keep_windows: bool = False,
    batch_windows: int = DEFAULT_BATCH_WINDOWS,
) -> FileResult:
    """Analyse one file. Never raises for a bad file: the result carries its one-line ``error``."""
    result = FileResult(key=file_key(path), model=model.name, model_version=model.version)
    frontend = recipe.frontend(batch_windows=batch_windows)
    stats = RunningStats()
    starts, padded, values = [], [], []

    def run(batches: list) -> None:
        for batch in batches:
            batch_values = model.process(batch.inputs)
            stats.process(batch_values)
            result.padded = result.padded or bool(batch.padded.any())
            if keep_windows:
                starts.append(batch.starts_s)
                padded.append(batch.padded)
                values.append(batch_values)

    try:
        with FileDecoder(path, sample_rate=recipe.sample_rate) as decoder:
            for block in decoder.blocks():
                run(frontend.process(block))
            run(frontend.flush())
            result.duration_s = decoder.duration_s
    except AudioFileError as error:
        result.error = str(error)
        return result
    finally:
        frontend.close()
    result.num_windows, result.mean, result.std = stats.count, stats.mean, stats.std
    if keep_windows:
        starts_s = np.concatenate(starts)
        result.windows = WindowValues(
            starts_s=starts_s,
            ends_s=window_ends(starts_s=starts_s, duration_s=result.duration_s, span_s=recipe.window_span_s),
            padded=np.concatenate(padded),
            values=np.concatenate(values),
        )
    return result


# --- the process pool: each worker decodes, computes features and runs its own ONNX session ----------

_WORKER: dict[str, object] = {}


def _start_worker(model_path: str, threads: int, keep_windows: bool, batch_windows: int, precision: str | None) -> None:
    model = WindowModel(path=model_path, threads=threads, precision=precision)
    _WORKER.update(model=model, recipe=model.recipe, keep_windows=keep_windows, batch_windows=batch_windows)


def _end_with_parent(parent: int) -> None:
    """Pool worker thread: end this process when its parent has gone (killed with SIGKILL, it could not
    stop its workers), so that no worker is left holding its memory."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


def _start_pool_worker(*args: object) -> None:
    threading.Thread(target=_end_with_parent, args=(os.getppid(),), name="mer-live-parent-watch", daemon=True).start()
    _start_worker(*args)  # type: ignore[arg-type]


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's worker processes now (an interrupted run: their files are not waited for)."""
    for process in list(getattr(pool, "_processes", {}).values()):  # the executor has no public way
        process.terminate()


def _work(path: str) -> FileResult:
    return analyse_file(
        Path(path),
        model=_WORKER["model"],  # type: ignore[arg-type]
        recipe=_WORKER["recipe"],  # type: ignore[arg-type]
        keep_windows=bool(_WORKER["keep_windows"]),
        batch_windows=int(_WORKER["batch_windows"]),  # type: ignore[call-overload]
    )


def analyse_files(
    paths: list[Path],
    *,
    model_path: Path,
    jobs: int,
    threads: int = 1,
    keep_windows: bool = False,
    batch_windows: int = DEFAULT_BATCH_WINDOWS,
    precision: str | None = None,
) -> Iterator[FileResult]:
    """Analyse ``paths``, yielding each result as it completes (in completion order when ``jobs`` > 1).

    ``jobs`` = 1 runs in this process; more start that many worker processes, each loading the model
    once, with at most ``IN_FLIGHT_PER_JOB`` files queued per worker.
    """
    if jobs <= 1:
        _start_worker(str(model_path), threads, keep_windows, batch_windows, precision)
        try:
            for path in paths:
                yield _work(str(path))
        finally:
            _WORKER.pop("model").close()  # type: ignore[union-attr]
            _WORKER.clear()
        return
    for name in THREAD_ENV:  # one BLAS thread per worker: the workers are the parallelism
        os.environ.setdefault(name, "1")
    pending = iter(paths)
    running: set[Future] = set()
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=get_context("spawn"),
        initializer=_start_pool_worker,
        initargs=(str(model_path), threads, keep_windows, batch_windows, precision),
    ) as pool:
        try:
            while True:
                while len(running) < jobs * IN_FLIGHT_PER_JOB:
                    path = next(pending, None)
                    if path is None:
                        break
                    running.add(pool.submit(_work, str(path)))
                if not running:
                    return
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        except BaseException:  # interrupted, terminated, or the caller stopped early: end the workers now
            _stop_workers(pool)
            raise
        finally:
            for future in running:
                future.cancel()
