"""``mer-live analyze PATH... [--out results.parquet] [--csv OUT] [--jobs N] [--ray [ADDRESS]]``.

The shipped model over a catalogue of audio files. Each file is decoded in blocks and analysed in sliding
10 s windows with a 1 s hop (the last window ends at the end of the file); a file shorter than 10 s is
loop-padded and flagged. One row per file holds the mean and the std over its windows; per-window rows are
optional. Values are in the 0-1 units that the daemon sends (:mod:`mer_live.core.labels`), clipped to [0, 1].
Directories are walked recursively (``--ext`` filters). Outputs are resumable (:mod:`mer_live.offline.results`).
A file that cannot be analysed gets a row with its error and a one-line error on stderr; the other files
are still analysed, and the exit status is non-zero.
"""

from __future__ import annotations

import os

# One BLAS thread per process, set before numpy is first imported: the jobs are the parallelism, and
# the front-end's small matrix products run slower with more (see benchmarks/analyze_throughput.py).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import contextlib
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tqdm import tqdm

from mer_live.offline.catalogue import AUDIO_EXTENSIONS, FileResult, analyse_files, file_key, find_files
from mer_live.core.command import ArgumentParser, run_command
from mer_live.core.exit_codes import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE, UsageError
from mer_live.model.emotion_model import PRECISIONS, ModelError, resolve_model
from mer_live.offline.recipe import DEFAULT_BATCH_WINDOWS, WindowModel
from mer_live.offline.results import FILE_HEADER, JOURNAL_SUFFIX, WINDOW_HEADER, Journal, ResultsError, parquet_available, render

PROG = "mer-live analyze"
HELP = "run the model over audio files and folders: one row per file (and per window), resumable"
DESCRIPTION = ("Run the mer-live model over audio files and folders (10 s windows, 1 s hop), on every core "
               "or on a Ray cluster; Parquet or CSV out, resumable.")
SECONDS_PER_HOUR = 3600.0
RAY_LOCAL = "local"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mer-live analyze`` (see :mod:`mer_live.core.command`)."""
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE", help="audio files, or folders to walk")
    parser.add_argument("--out", type=Path, help="per-file rows, .parquet or .csv; resumable")
    parser.add_argument("--window-out", dest="window_out", type=Path,
                        help="also per-window rows, .parquet or .csv")
    parser.add_argument("--csv", type=Path, help="per-file rows as CSV (default: stdout when no --out)")
    parser.add_argument("--window-csv", dest="window_csv", type=Path, help="per-window rows as CSV")
    parser.add_argument("--ext", default=",".join(e.lstrip(".") for e in AUDIO_EXTENSIONS),
                        help="extensions to take from folders, comma-separated (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: all cores, %(default)s)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH_WINDOWS,
                        help="windows per model call (default %(default)s); results do not depend on it")
    parser.add_argument("--model", help="ONNX model file, or a shipped model: v1, v2 or v3 (default: v3 or $MER_MODEL)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per job (default 1)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="int8 (default, or $MER_PRECISION): a v2 model's INT8 pack, checked against the float "
                             "model by benchmarks/parity.py; float: the exported float model")
    parser.add_argument("--ray", nargs="?", const=RAY_LOCAL, metavar="ADDRESS",
                        help="run on a Ray cluster (ADDRESS, or 'auto'; alone: a local Ray); needs mer-live[ray]")
    parser.add_argument("--ray-actors", dest="ray_actors", type=int,
                        help="model actors on the cluster (default: one per CPU of the cluster)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


class Progress:
    """A tqdm bar over files, with audio hours done and audio hours per second in its postfix."""

    def __init__(self, *, total: int, quiet: bool) -> None:
        self._bar = tqdm(total=total, desc="analysing", unit="file", disable=quiet, file=sys.stderr)
        self._audio_s = 0.0
        self._started = time.monotonic()

    def process(self, *, duration_s: float) -> None:
        if duration_s == duration_s:  # not NaN
            self._audio_s += duration_s
        hours = self._audio_s / SECONDS_PER_HOUR
        rate = hours / max(time.monotonic() - self._started, 1e-9)
        self._bar.set_postfix_str(f"{hours:.3f} audio-h, {rate:.4f} audio-h/s", refresh=False)
        self._bar.update(1)

    def write(self, message: str) -> None:
        self._bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a service manager, a closed terminal): ends the run like Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:  # noqa: ARG001 (signal's signature)
    raise Terminated(signal.Signals(signum).name)


def _cores() -> int:
    """The cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def _check_outputs(args: argparse.Namespace) -> str | None:
    targets = [t for t in (args.out, args.window_out, args.csv, args.window_csv) if t is not None]
    for target in targets:
        if target.is_dir():
            return f"{target}: is a folder; name the output file, e.g. {target / 'results.parquet'}"
        if not target.parent.is_dir():
            return f"{target}: output folder {target.parent} does not exist"
        if len(os.fsencode(target.name + JOURNAL_SUFFIX)) > 255:
            return f"{target}: file name too long"
    if any(t.suffix.lower() == ".parquet" for t in targets) and not parquet_available():
        return "Parquet output needs pyarrow: pip install 'mer-live[parquet]'"
    if args.jobs < 1 or args.batch < 1 or args.threads < 1:
        return "--jobs, --batch and --threads must be at least 1"
    if args.window_out is not None and args.out is None:
        return "--window-out needs --out"
    return None


def _own_header(path: Path) -> tuple[str, ...] | None:
    """The column names of an existing output file (CSV header or Parquet schema), None if unreadable."""
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return tuple(pq.read_schema(str(path)).names)
        with path.open("rb") as handle:
            return tuple(handle.readline(1 << 16).decode("utf-8").rstrip("\r\n").split(","))
    except (OSError, ValueError, ImportError):  # pyarrow's errors are OSError or ValueError subclasses
        return None


def _check_overwrites(*, args: argparse.Namespace, inputs: list[Path], journal_path: Path | None) -> list[str]:
    """Refuse (UsageError) to write over an input or any file that is not mer-live's results of its kind;
    returns a note for each earlier output that will be replaced although its journal is gone."""
    sources = {os.path.realpath(p) for p in inputs}
    notes = []
    for option, target, header in (("--out", args.out, FILE_HEADER), ("--csv", args.csv, FILE_HEADER),
                                   ("--window-out", args.window_out, WINDOW_HEADER),
                                   ("--window-csv", args.window_csv, WINDOW_HEADER)):
        if target is None or not target.exists():
            continue
        if os.path.realpath(target) in sources:
            raise UsageError(f"{option} {target}: is one of the input files; not overwriting it, name another output", prog=PROG)
        if _own_header(target) != header:
            raise UsageError(f"{option} {target}: exists and is not mer-live's results (an audio file, or another "
                             "program's); not overwriting it: name another output or move it away", prog=PROG)
        if journal_path is None or not journal_path.exists():
            notes.append(f"{PROG}: replacing {target}: results of an earlier run whose journal is gone")
    return notes


def _results(args: argparse.Namespace, *, todo: list[Path], model_path: Path, keep_windows: bool) -> Iterator[FileResult]:
    """The results of ``todo``, in completion order: on Ray with ``--ray``, else in a process pool."""
    if args.ray is None:
        yield from analyse_files(
            todo, model_path=model_path, jobs=min(args.jobs, max(1, len(todo))), threads=args.threads,
            keep_windows=keep_windows, batch_windows=args.batch, precision=args.precision,
        )
        return
    try:
        import ray  # noqa: F401  (the ray extra; only --ray imports it)

        from mer_live.offline.cluster import ClusterError, analyse_on_ray
    except ImportError as error:
        raise UsageError(f"--ray needs Ray: pip install 'mer-live[ray]' ({error})", prog=PROG) from error
    try:
        yield from analyse_on_ray(
            todo, model_path=model_path, address=None if args.ray == RAY_LOCAL else args.ray,
            actors=args.ray_actors, keep_windows=keep_windows, batch_windows=args.batch, precision=args.precision,
        )
    except ClusterError as error:
        raise UsageError(str(error), prog=PROG) from error


def main(argv: list[str] | None = None) -> int:
    """``mer-live analyze`` with ``argv``; returns the exit status."""
    parser = ArgumentParser(prog=PROG, description=DESCRIPTION)
    add_arguments(parser)
    return run_command(parser=parser, run=run, argv=list(sys.argv[1:] if argv is None else argv))


def run(args: argparse.Namespace) -> int:
    """Analyse the files; returns 0, or ``EXIT_USAGE`` if any file failed (raises :class:`UsageError` for
    a bad model, output or option)."""
    problem = _check_outputs(args)
    if problem is not None:
        raise UsageError(problem, prog=PROG)
    model_path = resolve_model(args.model)
    try:
        model = WindowModel(path=model_path, threads=1, precision=args.precision, reuse=False)  # checks it once, here
    except ModelError as error:
        raise UsageError(str(error), prog=PROG) from error
    model.close()
    extensions = tuple("." + e.strip().lstrip(".").lower() for e in args.ext.split(",") if e.strip())
    unreadable: list[str] = []
    paths = find_files(args.paths, extensions=extensions, problems=unreadable)
    if args.ray is None and args.jobs > _cores():
        print(f"{PROG}: --jobs {args.jobs} is more than the {_cores()} core(s) here; using {_cores()} "
              "(more jobs only add memory and time)", file=sys.stderr)
        args.jobs = _cores()
    keep_windows = args.window_out is not None or args.window_csv is not None
    file_outputs = [p for p in (args.out, args.csv) if p is not None] or [None]
    window_outputs = [p for p in (args.window_out, args.window_csv) if p is not None]
    anchor = next((p for p in file_outputs if p is not None), None)
    notes = _check_overwrites(args=args, inputs=paths, journal_path=anchor.with_name(anchor.name + JOURNAL_SUFFIX) if anchor else None)
    previous = {sig: signal.signal(sig, _terminate) for sig in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if sig}
    try:
        return _analyse(args, paths=paths, unreadable=unreadable, notes=notes, model_path=model_path,
                        file_outputs=file_outputs, window_outputs=window_outputs, anchor=anchor, keep_windows=keep_windows)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _analyse(args: argparse.Namespace, *, paths: list[Path], unreadable: list[str], notes: list[str], model_path: Path,
             file_outputs: list, window_outputs: list, anchor: Path | None, keep_windows: bool) -> int:
    """The run itself (under the stop signals): journal, analysis, outputs."""
    for line in notes:
        print(line, file=sys.stderr)
    for problem in unreadable:
        _error(problem)
    with tempfile.TemporaryDirectory(prefix="mer-live-analyze-") as scratch:
        journal_path = (
            anchor.with_name(anchor.name + JOURNAL_SUFFIX) if anchor else Path(scratch) / ("stdout" + JOURNAL_SUFFIX)
        )
        try:
            journal = Journal(journal_path)
        except (OSError, ValueError, KeyError) as error:
            _error(f"{journal_path}: unreadable journal ({error}); delete it to start over")
            return EXIT_USAGE
        todo = [p for p in paths if not journal.is_done(file_key(p), with_windows=keep_windows)]
        skipped = len(paths) - len(todo)
        progress = Progress(total=len(todo), quiet=args.quiet)
        if skipped:
            progress.write(f"{PROG}: {skipped} of {len(paths)} file(s) already done in {journal_path}, skipped")
        failed = len(unreadable)
        try:
            for result in _results(args, todo=todo, model_path=model_path, keep_windows=keep_windows):
                journal.append(result)
                if result.error:
                    failed += 1
                    progress.write(f"{PROG}: error: {result.error}")
                elif result.padded:
                    progress.write(f"{PROG}: {result.key.path}: shorter than one window, loop-padded")
                progress.process(duration_s=result.duration_s)
        except UsageError as error:
            progress.close()
            journal.close()
            _error(str(error))
            return EXIT_USAGE
        except (KeyboardInterrupt, BrokenProcessPool, ResultsError) as error:
            progress.close()
            with contextlib.suppress(ResultsError):
                journal.close()
            kept = f"; the files done so far are kept in {journal_path}: run the same command to go on" if anchor else ""
            if isinstance(error, Terminated):
                _error(f"terminated ({error})" + kept)
                return EXIT_TERMINATED
            if isinstance(error, KeyboardInterrupt):
                _error("interrupted" + kept)
                return EXIT_INTERRUPTED
            if isinstance(error, ResultsError):
                _error(f"{error}; free some space" + kept)
                return EXIT_FAILURE
            _error("a worker process died (killed, or out of memory)" + kept)
            return EXIT_FAILURE
        progress.close()
        try:
            journal.close()
            render(journal, file_outputs=file_outputs, window_outputs=window_outputs)
        except ResultsError as error:
            _error(str(error))
            return EXIT_FAILURE
    if failed:
        parts = [f"{failed - len(unreadable)} of {len(todo)} file(s) could not be analysed"] if failed > len(unreadable) else []
        parts += [f"{len(unreadable)} folder(s) could not be read"] if unreadable else []
        _error(" and ".join(parts))
        return EXIT_USAGE
    return EXIT_OK
