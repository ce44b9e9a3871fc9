"""``mer-live analyze FILE... [--csv OUT] [--window-csv OUT]``: the shipped model over audio files.

Each file is analysed in sliding 10 s windows with a 1 s hop (the last window ends at the end of the
file). One row per file holds the mean over its windows; ``--window-csv`` also writes one row per window.
Values are in the 0-1 units that the daemon sends (:mod:`mer_live.labels`), clipped to [0, 1], in columns
named after the labels. Files shorter than 10 s are loop-padded and flagged (``padded`` = True). A file
that cannot be read gets a one-line error naming it; the other files are still analysed, and the exit
status is non-zero.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import features, labels
from .command import ArgumentParser, run_command
from .exit_codes import EXIT_OK, EXIT_USAGE
from .model import EmotionModel, ModelError

HOP_SECONDS = 1.0
HOP_FRAMES = int(round(HOP_SECONDS * features.FPS))  # 31 frames
BATCH_WINDOWS = 32
WINDOW_SPAN_S = features.NUM_FRAMES / features.FPS  # 313 frames: 10.016 s
FLOAT_FORMAT = "{:.6f}"
PROG = "mer-live analyze"
HELP = "run the model over audio files: one CSV row per file (and per 10 s window)"
DESCRIPTION = "Run the mer-live model over audio files (10 s windows, 1 s hop)."
FILE_COLUMNS = ("file", "duration_s", "num_windows", "padded")
WINDOW_COLUMNS = ("file", "window", "start_s", "end_s", "padded")
VALUE_COLUMNS = labels.EMOTIONS + labels.MID_LEVELS


@dataclass(frozen=True)
class FileResult:
    """One file's analysis: per-window ``emotion`` ``(num_windows, 8)`` and ``mid`` ``(num_windows, 7)``
    in sent units (clipped), the window start times ``(num_windows,)`` in seconds, and flags."""

    path: str
    duration_s: float
    starts_s: np.ndarray
    emotion: np.ndarray
    mid: np.ndarray
    padded: bool


def analyse_file(*, model: EmotionModel, path: Path) -> FileResult:
    """Run ``model`` over every sliding window of the file at ``path`` (raises AudioFileError)."""
    samples = features.load_audio(path=path)
    block = features.analyse(samples=samples)
    starts = features.window_starts(total_frames=block.num_frames, hop_frames=HOP_FRAMES)
    emotions, mids, padded = [], [], False
    for first in range(0, len(starts), BATCH_WINDOWS):
        windows = []
        for start in starts[first : first + BATCH_WINDOWS]:
            window, was_padded = features.window_at(block=block, start=start)
            windows.append(window)
            padded = padded or was_padded
        prediction = model.process(windows=np.stack(windows))
        emotions.append(prediction.emotion)
        mids.append(prediction.mid)
    emotion = np.clip(labels.emotion_to_unit(model_values=np.concatenate(emotions)), 0.0, 1.0)
    mid = np.clip(labels.mid_to_unit(model_values=np.concatenate(mids)), 0.0, 1.0)
    return FileResult(
        path=str(path),
        duration_s=len(samples) / features.SAMPLE_RATE,
        starts_s=np.asarray(starts, dtype=np.float64) / features.FPS,
        emotion=emotion,
        mid=mid,
        padded=padded,
    )


def _values(*, emotion: np.ndarray, mid: np.ndarray) -> list[str]:
    return [FLOAT_FORMAT.format(v) for v in np.concatenate([emotion, mid])]


def file_rows(*, results: list[FileResult]) -> list[list[str]]:
    """Per-file rows (mean over windows), columns ``FILE_COLUMNS + VALUE_COLUMNS``."""
    return [
        [r.path, FLOAT_FORMAT.format(r.duration_s), str(len(r.starts_s)), str(r.padded)]
        + _values(emotion=r.emotion.mean(axis=0), mid=r.mid.mean(axis=0))
        for r in results
    ]


def window_rows(*, results: list[FileResult]) -> list[list[str]]:
    """Per-window rows, columns ``WINDOW_COLUMNS + VALUE_COLUMNS``."""
    rows = []
    for r in results:
        for index, start in enumerate(r.starts_s):
            end = min(start + WINDOW_SPAN_S, max(r.duration_s, start))
            rows.append(
                [r.path, str(index), FLOAT_FORMAT.format(start), FLOAT_FORMAT.format(end), str(r.padded)]
                + _values(emotion=r.emotion[index], mid=r.mid[index])
            )
    return rows


def write_csv(*, path: Path | None, header: tuple[str, ...], rows: list[list[str]]) -> None:
    """Write to ``path`` (via a temporary file, so a failure leaves no half file) or stdout if None."""
    if path is None:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    temporary.replace(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mer-live analyze`` (see :mod:`mer_live.command`)."""
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files (wav, flac, ogg, mp3)")
    parser.add_argument("--csv", type=Path, help="write the per-file rows here (default: stdout)")
    parser.add_argument("--window-csv", dest="window_csv", type=Path, help="also write per-window rows here")
    parser.add_argument("--model", type=Path, help="ONNX model (default: the shipped model or $MER_MODEL)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """``mer-live analyze`` with ``argv``; returns the exit status."""
    parser = ArgumentParser(prog=PROG, description=DESCRIPTION)
    add_arguments(parser)
    return run_command(parser=parser, run=run, argv=list(sys.argv[1:] if argv is None else argv))


def run(args: argparse.Namespace) -> int:
    """Analyse the files; returns 0, or ``EXIT_USAGE`` if the model or any file or output failed."""
    for target in (args.csv, args.window_csv):
        if target is not None and not target.parent.is_dir():
            _error(f"{target}: output folder {target.parent} does not exist")
            return EXIT_USAGE
    try:
        model = EmotionModel(path=args.model, threads=args.threads)
    except ModelError as error:
        _error(str(error))
        return EXIT_USAGE
    results: list[FileResult] = []
    failed = 0
    for path in tqdm(args.files, desc="analysing", unit="file", disable=args.quiet, file=sys.stderr):
        try:
            result = analyse_file(model=model, path=path)
        except features.AudioFileError as error:
            tqdm.write(f"{PROG}: error: {error}", file=sys.stderr)
            failed += 1
            continue
        if result.padded:
            tqdm.write(f"{PROG}: {path}: shorter than {features.WINDOW_SECONDS:g} s, loop-padded", file=sys.stderr)
        results.append(result)
    model.close()
    try:
        write_csv(path=args.csv, header=FILE_COLUMNS + VALUE_COLUMNS, rows=file_rows(results=results))
        if args.window_csv is not None:
            write_csv(path=args.window_csv, header=WINDOW_COLUMNS + VALUE_COLUMNS, rows=window_rows(results=results))
    except OSError as error:
        _error(f"cannot write CSV ({error})")
        return EXIT_USAGE
    if failed:
        _error(f"{failed} of {len(args.files)} file(s) could not be analysed")
        return EXIT_USAGE
    return EXIT_OK
