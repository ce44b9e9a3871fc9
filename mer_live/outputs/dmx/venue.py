"""Venue calibration: each value's working range in this room, from a soundcheck log, and a rolling version.

``mer-live calibrate SOUNDCHECK.csv --out venue.toml`` reads a CSV log (``mer-live --csv``) of the
soundcheck and writes a venue profile: the input's noise floor (``NOISE_PERCENTILE`` of the level) and
show level (``SHOW_PERCENTILE``), the silence gate that follows from them (``--silence-db``), and the
working range of every emotion and mid-level value (``LOW_PERCENTILE`` to ``HIGH_PERCENTILE``). A
channel map's ``range = "venue"`` then maps that range to the channel's full output (``[dmx] venue``).

:class:`RollingRange` is the relative mode (``range = "relative"``): each value mapped by its own
percentiles over the last ``minutes``, sampled once a second (so memory is bounded by the window, never
by the length of the show), recomputed every ``RECOMPUTE_S``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from mer_live.core import labels
from mer_live.core.exit_codes import EXIT_OK, UsageError
from mer_live.outputs.dmx import signals

HELP = "learn the room from a soundcheck log: noise floor, show level, each value's working range"
DESCRIPTION = __doc__.split("\n\n")[0]
NOISE_PERCENTILE = 5.0
SHOW_PERCENTILE = 95.0
LOW_PERCENTILE = 5.0
HIGH_PERCENTILE = 95.0
SILENCE_MARGIN_DB = 6.0  # the silence gate this far above the noise floor
MIN_ROWS = 20
MIN_SPAN = 0.05  # a working range narrower than this (0-1 units) is widened around its middle, not amplified
LEVEL_MIN_SPAN_DB = 6.0
SAMPLE_S = 1.0
RECOMPUTE_S = 5.0
MIN_SAMPLES = 30  # the relative mode waits for this many seconds of music before it leaves the default range
RUNNING = "running"


@dataclass(frozen=True)
class VenueProfile:
    """Working ranges by signal name (``level`` in dBFS), and what was learnt about the input."""

    ranges: dict[str, tuple[float, float]]
    noise_floor_dbfs: float
    show_level_dbfs: float
    rows: int

    @property
    def silence_dbfs(self) -> float:
        return self.noise_floor_dbfs + SILENCE_MARGIN_DB

    def to_toml(self) -> str:
        lines = [
            "# mer-live venue profile (mer-live calibrate). [dmx] venue = \"THIS FILE\" and range = \"venue\" in a map use it.",
            f"rows = {self.rows}",
            f"noise_floor_dbfs = {self.noise_floor_dbfs:.1f}",
            f"show_level_dbfs = {self.show_level_dbfs:.1f}",
            f"silence_dbfs = {self.silence_dbfs:.1f}  # give it to the daemon: --silence-db {self.silence_dbfs:.0f}",
            "",
            "[ranges]",
        ]
        lines += [f'"{name}" = [{low:.4f}, {high:.4f}]' for name, (low, high) in self.ranges.items()]
        return "\n".join(lines) + "\n"


def _widen(low: float, high: float, *, span: float) -> tuple[float, float]:
    if high - low >= span:
        return low, high
    middle = (low + high) / 2.0
    return middle - span / 2.0, middle + span / 2.0


def profile_from_csv(path: str | Path, *, minutes: float | None = None) -> VenueProfile:
    """The venue profile of a CSV log (the last ``minutes`` of it, or all); raises :class:`UsageError`."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"{path}: cannot read the log ({error})") from error
    columns = ("stream_time_s", "state", "level_dbfs", *labels.EMOTIONS, *labels.MID_LEVELS)
    if rows and any(c not in rows[0] for c in columns):
        raise UsageError(f"{path}: not a mer-live CSV log (needs {', '.join(columns)}); record one with mer-live --csv")
    try:
        times = np.array([float(r["stream_time_s"]) for r in rows])
        if minutes is not None and len(times):
            keep = times >= times[-1] - minutes * 60.0
            rows = [r for r, k in zip(rows, keep) if k]
        level = np.array([float(r["level_dbfs"]) for r in rows])
        music = [r for r in rows if r["state"] == RUNNING and r["valence"] != ""]
        values = {name: np.array([float(r[name]) for r in music]) for name in (*labels.EMOTIONS, *labels.MID_LEVELS)}
    except ValueError as error:
        raise UsageError(f"{path}: a row is not a number ({error})") from error
    if len(music) < MIN_ROWS:
        raise UsageError(f"{path}: {len(music)} row(s) with music; record at least {MIN_ROWS} updates of the soundcheck at show level")
    ranges = {}
    for name, series in values.items():
        prefix = "emotion" if name in labels.EMOTIONS else "mid"
        low, high = np.percentile(series, [LOW_PERCENTILE, HIGH_PERCENTILE])
        ranges[f"{prefix}.{name}"] = _widen(float(low), float(high), span=MIN_SPAN)
    noise, show = (float(v) for v in np.percentile(level, [NOISE_PERCENTILE, SHOW_PERCENTILE]))
    ranges[signals.LEVEL] = _widen(noise, show, span=LEVEL_MIN_SPAN_DB)
    return VenueProfile(ranges=ranges, noise_floor_dbfs=noise, show_level_dbfs=show, rows=len(rows))


def load(path: str | Path) -> VenueProfile:
    """A saved venue profile; raises :class:`UsageError` with a one-line reason."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        ranges = {str(k): (float(v[0]), float(v[1])) for k, v in data["ranges"].items()}
        unknown = [k for k in ranges if k not in signals.INDEX]
        if unknown:
            raise ValueError(f"unknown value {unknown[0]!r} in [ranges]")
        return VenueProfile(ranges=ranges, noise_floor_dbfs=float(data["noise_floor_dbfs"]),
                            show_level_dbfs=float(data["show_level_dbfs"]), rows=int(data.get("rows", 0)))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, IndexError) as error:
        raise UsageError(f"venue profile {path}: {error}; make one with mer-live calibrate SOUNDCHECK.csv") from error


class RollingRange:
    """The relative mode's percentiles (see the module docstring), for the signals in ``indices``."""

    def __init__(self, *, indices: np.ndarray, minutes: float) -> None:
        self.indices = indices
        self._samples = np.zeros((max(MIN_SAMPLES, int(math.ceil(minutes * 60.0 / SAMPLE_S))), len(indices)))
        self._count = 0
        self._last_sample = -math.inf
        self._last_compute = -math.inf
        self._min_span = np.array([LEVEL_MIN_SPAN_DB if i == signals.LEVEL_AT else MIN_SPAN for i in indices])

    def add(self, values: np.ndarray, *, now: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Take ``values`` (a signal vector) at ``now`` seconds; returns new ``(low, high)`` when they are due."""
        if now - self._last_sample >= SAMPLE_S:
            self._samples[self._count % len(self._samples)] = values[self.indices]
            self._count += 1
            self._last_sample = now
        if self._count < MIN_SAMPLES or now - self._last_compute < RECOMPUTE_S:
            return None
        self._last_compute = now
        window = self._samples[: min(self._count, len(self._samples))]
        low, high = np.percentile(window, [LOW_PERCENTILE, HIGH_PERCENTILE], axis=0)
        middle, narrow = (low + high) / 2.0, (high - low) < self._min_span
        low = np.where(narrow, middle - self._min_span / 2.0, low)
        high = np.where(narrow, middle + self._min_span / 2.0, high)
        return low, high


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="SOUNDCHECK.csv", help="a CSV log of the soundcheck (mer-live --csv FILE)")
    parser.add_argument("--out", metavar="VENUE.toml", required=True, help="write the venue profile here")
    parser.add_argument("--minutes", type=float, help="use only the last N minutes of the log")


def run(args: argparse.Namespace) -> int:
    if args.minutes is not None and not (args.minutes > 0 and math.isfinite(args.minutes)):
        raise UsageError(f"--minutes {args.minutes}: give a positive number")
    profile = profile_from_csv(args.log, minutes=args.minutes)
    try:
        Path(args.out).write_text(profile.to_toml(), encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--out {args.out}: cannot write ({error.strerror})") from error
    print(f"{args.out}: {profile.rows} rows; noise floor {profile.noise_floor_dbfs:.1f} dBFS, show level "
          f"{profile.show_level_dbfs:.1f} dBFS (suggested --silence-db {profile.silence_dbfs:.0f}); "
          f"working ranges of {len(profile.ranges)} values")
    return EXIT_OK
