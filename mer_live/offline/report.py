"""``mer-live report SESSION.csv``: a rehearsal log or an analysed recording, drawn with matplotlib.

Reads the daemon's ``--csv`` log (one row per update) or ``mer-live analyze --window-csv`` output (one
row per 10 s window; ``--file`` picks one file when it holds several). It draws three panels over
session time: the 8 emotions, the 7 mid-level features, and one emotion (``--emotion``; by default the
one that moved most) as its bias plus the stacked contribution of each mid-level feature
(:mod:`mer_live.model.explanation`: contributions above the bias push it up, those below pull it down). The
state is a background band on every panel: ``warming``, ``silent``, and ``no-input`` for gaps in the
log (the daemon writes no rows while the input is gone, and its stream time starts again from 0 when
it restarts in place, so the time axis follows the wall clock across gaps and restarts).

Output: a self-contained HTML page (``--out``, default the CSV's name with ``.html``; images inline as
base64 PNG, and with ``--sections 0:00,1:30,...`` a table of per-section means) and, with ``--png``,
one PNG of the three panels. Bad input is one line ``mer-live report: error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import math
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from mer_live.core import labels
from mer_live.core.command import ArgumentParser, run_command
from mer_live.core.exit_codes import EXIT_OK, UsageError
from mer_live.core.reading import STATE_NO_INPUT, STATE_RUNNING, STATE_SILENT, STATE_WARMING, STATES
from mer_live.offline.results import FILE_HEADER, WINDOW_HEADER
from mer_live.outputs.csv import CSV_COLUMNS

PROG = "mer-live report"
HELP = "draw a session (a --csv log or analyze --window-csv output) as an HTML page and a PNG"
DESCRIPTION = (
    "Draw a mer-live session: emotions, mid-level features and one emotion's contributions over time, with the "
    "state as a background band; a self-contained HTML page (and a PNG), with per-section means."
)
KIND_LOG = "daemon log"
KIND_WINDOWS = "analysed windows"
VALUE_NAMES = (*labels.EMOTIONS, *labels.MID_LEVELS)
GAP_FACTOR = 4.0  # a pause longer than this many typical update intervals (and GAP_MIN_S) is no-input
GAP_MIN_S = 2.0
SECONDS_PER_MINUTE = 60
STATE_COLOURS = {STATE_WARMING: "#fbe7a1", STATE_SILENT: "#d9d9d9", STATE_NO_INPUT: "#f4b6b6"}
FIGURE_WIDTH_IN = 11.0
PANEL_HEIGHT_IN = 3.2
DPI = 100
LINE_WIDTH = 1.2
MEAN_DECIMALS = 2
PANELS = ("emotions", "mid-level features", "contributions")


class ReportError(ValueError):
    """Bad input for the report: one line naming the problem and the fix."""


@dataclass(frozen=True)
class Session:
    """One session, time-major: ``time_s`` ``(n,)`` seconds from the first row (increasing), ``states``
    ``(n,)`` str, ``emotion`` ``(n, 8)`` and ``mid`` ``(n, 7)`` in sent units (NaN before the first
    reading), ``gaps`` the ``(start_s, end_s)`` spans with no rows (no input)."""

    path: Path
    kind: str
    name: str
    time_s: np.ndarray
    states: np.ndarray
    emotion: np.ndarray
    mid: np.ndarray
    gaps: tuple[tuple[float, float], ...]

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1]) if len(self.time_s) else 0.0

    @property
    def has_values(self) -> np.ndarray:
        """``(n,)`` bool: rows that carry values."""
        return np.all(np.isfinite(self.emotion), axis=1)


# ------------------------------------------------------------------------------------------ reading


def _float(*, text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError as error:
        raise ReportError(f"{where}: {text!r} is not a number") from error
    if not math.isfinite(value):
        raise ReportError(f"{where}: {text!r} is not a finite number")
    return value


def _values(*, cells: list[str], where: str) -> list[float]:
    if all(cell == "" for cell in cells):
        return [math.nan] * len(cells)
    return [_float(text=cell, where=where) for cell in cells]


def _wall_clock(*, text: str, where: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as error:
        raise ReportError(f"{where}: {text!r} is not an ISO time") from error


def _timeline(*, stream_s: np.ndarray, wall_s: np.ndarray) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Session time from the log's stream time, carried across restarts (stream time going back) and
    gaps by the wall clock; returns ``(time_s (n,), gaps)``."""
    n = len(stream_s)
    time_s = np.zeros(n)
    steps = np.diff(stream_s)
    typical = float(np.median(steps[steps > 0])) if np.any(steps > 0) else 0.0
    gap_s = max(GAP_MIN_S, GAP_FACTOR * typical)
    gaps = []
    offset = stream_s[0] if n else 0.0
    for i in range(1, n):
        stream_step = stream_s[i] - stream_s[i - 1]
        wall_step = wall_s[i] - wall_s[i - 1]
        if stream_step <= 0:  # a restart: the stream clock started again; the wall clock tells the pause
            step = max(wall_step, typical)
        else:
            step = stream_step
            if wall_step - stream_step > gap_s:  # no rows for a while, although the stream ran on (or a pause)
                step = max(stream_step, wall_step)
        if step > gap_s:
            gaps.append((float(time_s[i - 1]), float(time_s[i - 1] + step)))
        time_s[i] = time_s[i - 1] + step
    return time_s + offset, [(start + offset, end + offset) for start, end in gaps]


def _read_rows(*, path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError as error:
        raise ReportError(f"{path}: no such file") from error
    except OSError as error:
        raise ReportError(f"{path}: cannot read ({error.strerror})") from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise ReportError(f"{path}: not a CSV text file ({error})") from error
    if not rows:
        raise ReportError(f"{path}: empty file; give a CSV written by mer-live --csv or mer-live analyze --window-csv")
    return rows[0], rows[1:]


def load_session(*, path: str | Path, file: str | None = None) -> Session:
    """Read a daemon log or an analyze window CSV (raises :class:`ReportError`)."""
    path = Path(path)
    header, rows = _read_rows(path=path)
    header = [cell.lstrip("\ufeff") for cell in header]
    if tuple(header) == CSV_COLUMNS:
        return _load_log(path=path, rows=rows)
    if tuple(header) == WINDOW_HEADER:
        return _load_windows(path=path, rows=rows, file=file)
    if tuple(header) == FILE_HEADER:
        raise ReportError(f"{path}: this is analyze's per-file summary (--csv); report needs its --window-csv output")
    raise ReportError(
        f"{path}: not a mer-live CSV (header starts {','.join(header[:4])!r}); give a mer-live --csv log "
        "or mer-live analyze --window-csv output"
    )


def _load_log(*, path: Path, rows: list[list[str]]) -> Session:
    num_values = labels.NUM_EMOTIONS + labels.NUM_MID_LEVELS
    stream, wall, states, values = [], [], [], []
    for number, row in enumerate(rows, start=2):
        if not row:
            continue
        where = f"{path}, line {number}"
        if len(row) != len(CSV_COLUMNS):
            raise ReportError(f"{where}: {len(row)} cells, expected {len(CSV_COLUMNS)}")
        if row[2] not in STATES:
            raise ReportError(f"{where}: unknown state {row[2]!r}")
        wall.append(_wall_clock(text=row[0], where=where))
        stream.append(_float(text=row[1], where=where))
        states.append(row[2])
        values.append(_values(cells=row[4 : 4 + num_values], where=where))
    if not states:
        raise ReportError(f"{path}: no rows yet; let mer-live --csv run for a while first")
    time_s, gaps = _timeline(stream_s=np.asarray(stream), wall_s=np.asarray(wall))
    table = np.asarray(values, dtype=np.float64)
    return _checked(
        Session(
            path=path, kind=KIND_LOG, name=path.name, time_s=time_s, states=np.asarray(states),
            emotion=table[:, : labels.NUM_EMOTIONS], mid=table[:, labels.NUM_EMOTIONS :], gaps=tuple(gaps),
        )
    )


def _load_windows(*, path: Path, rows: list[list[str]], file: str | None) -> Session:
    rows = [row for row in rows if row]
    files = list(dict.fromkeys(row[0] for row in rows))
    if file is None:
        if len(files) > 1:
            raise ReportError(f"{path}: holds {len(files)} files ({', '.join(files[:3])}...); choose one with --file")
        file = files[0] if files else ""
    elif file not in files:
        matches = [name for name in files if Path(name).name == file or name.endswith(file)]
        if len(matches) != 1:
            raise ReportError(f"{path}: no windows of --file {file!r} (files: {', '.join(files[:5])})")
        file = matches[0]
    end, first_value = WINDOW_HEADER.index("end_s"), WINDOW_HEADER.index(VALUE_NAMES[0])
    ends, values = [], []
    for number, row in enumerate(rows, start=2):
        if row[0] != file:
            continue
        where = f"{path}, line {number}"
        if len(row) != len(WINDOW_HEADER):
            raise ReportError(f"{where}: {len(row)} cells, expected {len(WINDOW_HEADER)}")
        ends.append(_float(text=row[end], where=where))
        values.append(_values(cells=row[first_value : first_value + len(VALUE_NAMES)], where=where))
    if not ends:
        raise ReportError(f"{path}: no windows; run mer-live analyze FILE --window-csv OUT first")
    table = np.asarray(values, dtype=np.float64)
    return _checked(
        Session(
            path=path, kind=KIND_WINDOWS, name=Path(file).name, time_s=np.asarray(ends),
            states=np.full(len(ends), STATE_RUNNING), emotion=table[:, : labels.NUM_EMOTIONS],
            mid=table[:, labels.NUM_EMOTIONS :], gaps=(),
        )
    )


def _checked(session: Session) -> Session:
    if not np.any(session.has_values):
        raise ReportError(f"{session.path}: no row carries values yet (the model had not produced a reading)")
    return session


# ------------------------------------------------------------------------------------------ analysis


def parse_time(*, text: str) -> float:
    """``"90"``, ``"1:30"``, ``"1:02:03"`` or ``"1:30.5"`` -> seconds (raises :class:`ReportError`)."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or any(not p or not p.replace(".", "", 1).isdigit() for p in parts):
        raise ReportError(f"--sections: {text!r} is not a time; write M:SS, H:MM:SS or seconds, e.g. 0:00,1:30")
    seconds = 0.0
    for part in parts:
        seconds = seconds * SECONDS_PER_MINUTE + float(part)
    if len(parts) > 1 and any(float(p) >= SECONDS_PER_MINUTE for p in parts[1:]):
        raise ReportError(f"--sections: {text!r}: minutes and seconds after a ':' must be below 60")
    return seconds


def parse_sections(*, text: str) -> tuple[float, ...]:
    """``"0:00,1:30,3:00"`` -> section starts in seconds, strictly increasing."""
    starts = tuple(parse_time(text=item) for item in text.split(","))
    if any(b <= a for a, b in zip(starts, starts[1:])):
        raise ReportError(f"--sections {text!r}: the times must increase")
    return starts


def format_time(*, seconds: float) -> str:
    """Seconds as ``M:SS`` (or ``H:MM:SS``)."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, SECONDS_PER_MINUTE * SECONDS_PER_MINUTE)
    minutes, secs = divmod(rest, SECONDS_PER_MINUTE)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def contributions(*, mid: np.ndarray, weight: np.ndarray, bias: np.ndarray, emotion: int) -> tuple[np.ndarray, float]:
    """Each mid-level feature's contribution ``(n, 7)`` to ``emotion`` and its bias, in sent units.

    ``mid`` ``(n, 7)`` in sent units (as logged); ``weight`` ``(8, 7)`` and ``bias`` ``(8,)`` the model's
    Joint layer in model units. ``bias + contributions.sum(axis=1)`` is the (unclipped) emotion."""
    from mer_live.model.explanation import explain

    model_mid = np.asarray(mid, dtype=np.float64) * labels.MID_MODEL_SPAN + labels.MID_MODEL_MIN
    rows = np.stack([explain(mid=m, weight=weight, bias=bias).contributions[emotion] for m in model_mid])
    sent_bias = explain(mid=model_mid[0], weight=weight, bias=bias).bias[emotion]
    return rows, float(sent_bias)


def moved_most(*, session: Session) -> int:
    """The emotion with the largest spread over the session (its index)."""
    return int(np.nanargmax(np.nanstd(session.emotion[session.has_values], axis=0)))


@dataclass(frozen=True)
class SectionMeans:
    """Means over one section's rows with values: ``emotion`` ``(8,)``, ``mid`` ``(7,)``."""

    start_s: float
    end_s: float
    rows: int
    silent_share: float
    emotion: np.ndarray
    mid: np.ndarray


def section_means(*, session: Session, starts: tuple[float, ...]) -> list[SectionMeans]:
    """Per-section means; the last section runs to the end of the session."""
    if starts and starts[-1] >= session.duration_s:
        raise ReportError(
            f"--sections: {format_time(seconds=starts[-1])} is not before the end of the session "
            f"({format_time(seconds=session.duration_s)})"
        )
    result = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else session.duration_s
        last = index + 1 == len(starts)
        inside = (session.time_s >= start) & ((session.time_s <= end) if last else (session.time_s < end))
        valued = inside & session.has_values
        empty = np.full(labels.NUM_EMOTIONS, np.nan), np.full(labels.NUM_MID_LEVELS, np.nan)
        result.append(
            SectionMeans(
                start_s=start, end_s=end, rows=int(inside.sum()),
                silent_share=float(np.mean(session.states[inside] == STATE_SILENT)) if inside.any() else 0.0,
                emotion=session.emotion[valued].mean(axis=0) if valued.any() else empty[0],
                mid=session.mid[valued].mean(axis=0) if valued.any() else empty[1],
            )
        )
    return result


# ------------------------------------------------------------------------------------------ drawing


def _state_spans(*, session: Session) -> list[tuple[str, float, float]]:
    """``(state, start_s, end_s)`` for each run of rows in a non-running state, and every gap."""
    spans = []
    t, states = session.time_s, session.states
    start = 0
    for i in range(1, len(states) + 1):
        if i == len(states) or states[i] != states[start]:
            if states[start] != STATE_RUNNING:
                begin = t[start - 1] if start > 0 else t[start]
                spans.append((str(states[start]), float(begin), float(t[i - 1])))
            start = i
    spans.extend((STATE_NO_INPUT, a, b) for a, b in session.gaps)
    return spans


def _decorate(*, axes, session: Session, starts: tuple[float, ...], ylabel: str) -> None:
    from matplotlib.ticker import FuncFormatter

    for state, begin, end in _state_spans(session=session):
        axes.axvspan(begin, end, color=STATE_COLOURS[state], zorder=0, linewidth=0)
    for start in starts:
        axes.axvline(start, color="#444444", linestyle=":", linewidth=1.0, zorder=1)
    axes.set_xlim(float(session.time_s[0]), max(float(session.time_s[-1]), float(session.time_s[0]) + 1.0))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: format_time(seconds=x)))
    axes.set_ylabel(ylabel)
    axes.grid(True, axis="y", alpha=0.3)


def _broken(*, session: Session, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(time_s, values)`` with a NaN row at each gap, so that no line is drawn across it."""
    starts = np.asarray([start for start, _ in session.gaps])
    after = [i for i in range(1, len(session.time_s)) if np.any(np.isclose(session.time_s[i - 1], starts))]
    return np.insert(session.time_s, after, np.nan), np.insert(np.asarray(values, dtype=np.float64), after, np.nan, axis=0)


def _draw_lines(*, axes, session: Session, values: np.ndarray, names: tuple[str, ...], colours) -> None:
    t, values = _broken(session=session, values=values)
    for index, name in enumerate(names):
        axes.plot(t, values[:, index], label=name, linewidth=LINE_WIDTH, color=colours(index), zorder=2)
    axes.set_ylim(0.0, 1.0)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)


def _draw_contributions(*, axes, session: Session, weight: np.ndarray, bias: np.ndarray, emotion: int) -> None:
    """Stacked contributions around the bias: features that raise the emotion above, those that lower
    it below (each feature's sign is fixed, the mid-level values being positive)."""
    import matplotlib

    colours = matplotlib.colormaps["tab10"]
    parts, base = contributions(mid=np.nan_to_num(session.mid), weight=weight, bias=bias, emotion=emotion)
    parts[~session.has_values] = np.nan
    t, parts = _broken(session=session, values=parts)
    valued = np.all(np.isfinite(parts), axis=1)
    up = np.full(len(t), base)
    down = np.full(len(t), base)
    for index, name in enumerate(labels.MID_LEVELS):
        column = parts[:, index]
        if np.nanmean(column) >= 0:
            lower, upper = up.copy(), up + np.nan_to_num(column)
            up = upper
        else:
            upper, lower = down.copy(), down + np.nan_to_num(column)
            down = lower
        axes.fill_between(t, lower, upper, where=valued, color=colours(index), alpha=0.75, linewidth=0, label=name, zorder=2)
    total = base + np.nansum(parts, axis=1)
    total[~valued] = np.nan
    axes.axhline(base, color="black", linewidth=0.8, linestyle="--", zorder=3, label="bias")
    axes.plot(t, total, color="black", linewidth=1.6, zorder=4, label=f"{labels.EMOTIONS[emotion]} (sum, unclipped)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    axes.set_title(f"{labels.EMOTIONS[emotion]} = bias + contributions of the mid-level features", fontsize="medium")


def _state_legend(*, figure) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=colour, label=state) for state, colour in STATE_COLOURS.items()]
    figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize="small", title="state (background)")


def draw(*, session: Session, weight: np.ndarray, bias: np.ndarray, emotion: int, starts: tuple[float, ...] = (), panels: tuple[str, ...] = PANELS):
    """A matplotlib figure with the chosen ``panels`` stacked over a shared time axis."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(FIGURE_WIDTH_IN, PANEL_HEIGHT_IN * len(panels) + 0.8), dpi=DPI, layout="constrained")
    axes_list = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for axes, panel in zip(axes_list, panels):
        if panel == "emotions":
            _draw_lines(axes=axes, session=session, values=session.emotion, names=labels.EMOTIONS, colours=matplotlib.colormaps["tab10"])
            axes.set_title("emotions", fontsize="medium")
            ylabel = "0-1"
        elif panel == "mid-level features":
            _draw_lines(axes=axes, session=session, values=session.mid, names=labels.MID_LEVELS, colours=matplotlib.colormaps["Dark2"])
            axes.set_title("mid-level features", fontsize="medium")
            ylabel = "0-1"
        else:
            _draw_contributions(axes=axes, session=session, weight=weight, bias=bias, emotion=emotion)
            ylabel = labels.EMOTIONS[emotion]
        _decorate(axes=axes, session=session, starts=starts, ylabel=ylabel)
    axes_list[-1].set_xlabel("session time (m:ss)")
    figure.suptitle(f"{session.name} ({session.kind}, {format_time(seconds=session.duration_s)})")
    _state_legend(figure=figure)
    return figure


def png_bytes(*, figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ HTML


def _means_table(*, sections: list[SectionMeans]) -> str:
    """One column per section, one row per value (so that many values fit a page's width)."""
    head = "".join(
        f"<th>{format_time(seconds=s.start_s)}&ndash;{format_time(seconds=s.end_s)}</th>" for s in sections
    )
    rows = [
        "<tr><th>rows</th>" + "".join(f"<td>{s.rows}</td>" for s in sections) + "</tr>",
        "<tr><th>silent</th>" + "".join(f"<td>{s.silent_share:.0%}</td>" for s in sections) + "</tr>",
    ]
    for index, name in enumerate((*labels.EMOTIONS, *labels.MID_LEVELS)):
        cells = []
        for s in sections:
            value = np.concatenate([s.emotion, s.mid])[index]
            cells.append("&ndash;" if not math.isfinite(value) else f"{value:.{MEAN_DECIMALS}f}")
        rows.append(f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr><th>section</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def html_page(*, session: Session, images: list[tuple[str, bytes]], sections: list[SectionMeans]) -> str:
    """A self-contained page: ``images`` ``(title, png)`` inline as data URIs, and the section table."""
    states = ", ".join(
        f"{state} {np.mean(session.states == state):.0%}" for state in STATES if np.any(session.states == state)
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>mer-live report: {html.escape(session.name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}img{max-width:100%;display:block}"
        "table{border-collapse:collapse;font-size:small}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "th{background:#eee;white-space:nowrap}tbody th{text-align:left}</style></head><body>",
        f"<h1>mer-live report: {html.escape(session.name)}</h1>",
        f"<p>{html.escape(str(session.path))}: {html.escape(session.kind)}, {len(session.time_s)} rows, "
        f"{format_time(seconds=session.duration_s)}; states: {html.escape(states)}"
        + (f"; {len(session.gaps)} gap(s) with no input" if session.gaps else "")
        + ". Values are 0-1 (an emotion of 0.5 is a mean rating of 5 on the 1-9 scale).</p>",
    ]
    if sections:
        parts += ["<h2>Section means</h2>", _means_table(sections=sections)]
    for title, png in images:
        encoded = base64.b64encode(png).decode("ascii")
        parts += [f"<h2>{html.escape(title)}</h2>", f'<img alt="{html.escape(title)}" src="data:image/png;base64,{encoded}">']
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------ command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``report`` subcommand's arguments."""
    parser.add_argument("csv", type=Path, metavar="SESSION.csv", help="a mer-live --csv log or mer-live analyze --window-csv output")
    parser.add_argument("--out", type=Path, metavar="HTML", help="the HTML page (default: the CSV's name with .html)")
    parser.add_argument("--png", type=Path, metavar="PNG", help="also write the three panels as one PNG")
    parser.add_argument("--emotion", choices=labels.EMOTIONS, help="the emotion whose contributions are drawn (default: the one that moved most)")
    parser.add_argument("--sections", metavar="T,T,...", help="section starts (M:SS), e.g. 0:00,1:30,4:10: marks them and adds a table of means")
    parser.add_argument("--file", metavar="NAME", help="with an analyze window CSV of several files: the file to draw")
    parser.add_argument("--model", type=Path, metavar="PATH", help="model whose Joint layer explains the emotions (default: the shipped one)")


def _joint_layer(*, path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    from mer_live.model.emotion_model import EmotionModel, ModelError

    try:
        model = EmotionModel(path=path)
    except ModelError as error:
        raise ReportError(str(error)) from error
    weight, bias = model.weight, model.bias
    model.close()
    return weight, bias


def _write(*, path: Path, data: bytes) -> None:
    if not path.parent.is_dir():
        raise ReportError(f"{path}: output folder {path.parent} does not exist")
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError as error:
        raise ReportError(f"{path}: cannot write ({error.strerror})") from error


def report(
    session: Session,
    *,
    out: Path,
    png: Path | None = None,
    emotion: str | None = None,
    starts: tuple[float, ...] = (),
    weight: np.ndarray,
    bias: np.ndarray,
) -> None:
    """Write the HTML page ``out`` (and the PNG ``png``) for ``session``."""
    index = labels.EMOTIONS.index(emotion) if emotion else moved_most(session=session)
    sections = section_means(session=session, starts=starts) if starts else []
    images = []
    for panel in PANELS:
        figure = draw(session=session, weight=weight, bias=bias, emotion=index, starts=starts, panels=(panel,))
        images.append((f"{labels.EMOTIONS[index]}: contributions" if panel == "contributions" else panel, png_bytes(figure=figure)))
    if png is not None:
        _write(path=png, data=png_bytes(figure=draw(session=session, weight=weight, bias=bias, emotion=index, starts=starts)))
    _write(path=out, data=html_page(session=session, images=images, sections=sections).encode("utf-8"))


def run(args: argparse.Namespace) -> int:
    """Run the subcommand on parsed ``args``; returns the exit status (raises :class:`UsageError`)."""
    try:
        try:
            import matplotlib  # noqa: F401 - only to say how to install it
        except ImportError as error:
            raise ReportError("the report needs matplotlib: pip install 'mer-live[report]'") from error
        starts = parse_sections(text=args.sections) if args.sections else ()
        session = load_session(path=args.csv, file=args.file)
        weight, bias = _joint_layer(path=args.model)
        out = args.out or args.csv.with_suffix(".html")
        report(session, out=out, png=args.png, emotion=args.emotion, starts=starts, weight=weight, bias=bias)
    except ReportError as error:
        raise UsageError(str(error), prog=PROG) from error
    print(f"{PROG}: wrote {out}" + (f" and {args.png}" if args.png else ""), file=sys.stderr)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``mer-live report`` with ``argv``; returns the exit status."""
    parser = ArgumentParser(prog=PROG, description=DESCRIPTION)
    add_arguments(parser)
    return run_command(parser=parser, run=run, argv=list(sys.argv[1:] if argv is None else argv))
