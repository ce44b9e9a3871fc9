"""The live meter: a full-screen view of the readings on a terminal, the default readout when stdout is
a terminal.

It shows a bar for each of the 8 emotions and 7 mid-level features, the state and the input level, the
update and overflow counts, each output (OSC target, CSV file, MIDI port) with the updates it
delivered and dropped (the output stage's counters, :mod:`mer_live.outputs.base`), the latest log lines, and for the emotion that moved most over the last ``MOVE_WINDOW_S``
seconds the mid-level features behind the move: because an emotion is its bias plus one contribution
per mid-level feature (:mod:`mer_live.model.explanation`), its change is exactly the sum of the changes of
those contributions, and the largest ones are named, with the direction the feature itself moved
("happy ↓ 0.12 because minorness ↑ −0.08").

:meth:`Meter.process` only keeps the reading (the analysis never waits for the terminal); a drawing
thread redraws at most ``MAX_REDRAWS_PER_S`` times a second, and only when something new arrived, and
:class:`Screen` rewrites only the lines that changed (rich gives the terminal's colours and the styles'
escape codes), which keeps the meter's cost under 1 % of a core (``benchmarks/daemon_cpu.py --meter``).
"""

from __future__ import annotations

import collections
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

import numpy as np

from mer_live.core import labels
from mer_live.core.reading import LEVEL_FLOOR_DBFS, STATE_NO_INPUT, STATE_RUNNING, STATE_SILENT, STATE_WARMING, Reading

MAX_REDRAWS_PER_S = 10.0
MOVE_WINDOW_S = 5.0
HISTORY_LENGTH = 512  # readings kept for the move (>= MOVE_WINDOW_S at the highest rate, 30/s)
STEADY = 0.01  # a move smaller than this (0-1 units) is "steady"
TOP_CONTRIBUTIONS = 3
LOG_LINES_SHOWN = 4
LOG_LINES_KEPT = 200
LEVEL_RANGE_DBFS = (-60.0, 0.0)
NAME_WIDTH = 18
VALUE_WIDTH = 6
MIN_BAR = 8
EIGHTHS = " ▏▎▍▌▋▊▉█"
STATE_STYLES = {STATE_RUNNING: "bold green", STATE_WARMING: "bold yellow", STATE_SILENT: "bold white", STATE_NO_INPUT: "bold red"}
UP, DOWN = "↑", "↓"
STOP_TIMEOUT_S = 2.0


class Counts(Protocol):
    """An output's counters, as :meth:`mer_live.outputs.base.Output.counts` gives them (in updates)."""

    name: str
    delivered: int
    dropped: int


@dataclass(frozen=True)
class Move:
    """The emotion that moved most over ``seconds``: its change ``delta`` and the top contributions'
    changes ``(mid-level index, change of contribution, change of the feature)``."""

    emotion: int
    delta: float
    seconds: float
    drivers: tuple[tuple[int, float, float], ...]


def moved_most(*, history: Sequence[Reading], window_s: float = MOVE_WINDOW_S) -> Move | None:
    """The biggest emotion move between the latest reading with values in ``history`` and the one
    about ``window_s`` before it (or the oldest there is); None with fewer than two readings."""
    valued = [r for r in history if r.has_values and r.is_update]
    if len(valued) < 2:
        return None
    now = valued[-1]
    then = next((r for r in valued if r.stream_time_s >= now.stream_time_s - window_s), valued[0])
    if then is now:
        then = valued[-2]
    change = now.emotion_unclipped - then.emotion_unclipped
    emotion = int(np.argmax(np.abs(change)))
    contribution_change = now.contributions[emotion] - then.contributions[emotion]
    mid_change = now.mid - then.mid
    order = np.argsort(-np.abs(contribution_change))[:TOP_CONTRIBUTIONS]
    drivers = tuple((int(m), float(contribution_change[m]), float(mid_change[m])) for m in order)
    return Move(emotion=emotion, delta=float(change[emotion]), seconds=now.stream_time_s - then.stream_time_s, drivers=drivers)


def describe_move(*, move: Move | None) -> str:
    """``"happy ↓ 0.12 in 5.0 s because minorness ↑ −0.08, tonal_stability ↓ −0.03"``."""
    if move is None:
        return "waiting for readings"
    if abs(move.delta) < STEADY:
        return f"all emotions steady over the last {move.seconds:.1f} s"
    arrow = UP if move.delta > 0 else DOWN
    reasons = ", ".join(
        f"{labels.MID_LEVELS[m]} {UP if mid_change > 0 else DOWN} {contribution:+.2f}".replace("-", "−")
        for m, contribution, mid_change in move.drivers
        if abs(contribution) >= STEADY / 2
    )
    return f"{labels.EMOTIONS[move.emotion]} {arrow} {abs(move.delta):.2f} in {move.seconds:.1f} s because {reasons}"


def bar(*, value: float, width: int) -> str:
    """A horizontal bar of ``width`` cells for ``value`` in 0-1 (eighth-cell resolution)."""
    if not math.isfinite(value):
        return " " * width
    eighths = int(round(min(1.0, max(0.0, value)) * width * 8))
    full, part = divmod(eighths, 8)
    text = "█" * full + (EIGHTHS[part] if part else "")
    return text.ljust(width)


Line = list  # one screen line: [(text, style name), ...]; style "" = plain


def _cell(*, line: Line, text: str, style: str = "") -> Line:
    line.append((text, style))
    return line


def render(*, reading: Reading | None, history: Sequence[Reading], outputs: Sequence[Counts], log_lines: Sequence[str], width: int) -> list[Line]:
    """The screen for ``reading``: one list of ``(text, style)`` chunks per line, ``width`` columns wide."""
    if reading is None:
        return [[("mer-live", "bold reverse")], [("starting...", "")]]
    title: Line = [("mer-live", "bold reverse"), ("  ", ""), (f" {reading.state.upper()} ", STATE_STYLES.get(reading.state, "bold") + " reverse")]
    if reading.muted:
        title.append(("  MUTED", "bold magenta"))
    title.append((f"  {reading.stream_time_s:8.1f} s   updates {reading.updates}   overflows {reading.overflows}", ""))
    low, high = LEVEL_RANGE_DBFS
    level_bar = max(MIN_BAR, width - NAME_WIDTH - VALUE_WIDTH - 10)
    level_style = "red" if reading.level_dbfs > -1.0 else ("dim" if reading.state == STATE_SILENT else "cyan")
    level_text = f" {reading.level_dbfs:6.1f} dBFS" if reading.level_dbfs > LEVEL_FLOOR_DBFS else "   none"
    lines: list[Line] = [
        title,
        [("input level".ljust(NAME_WIDTH), ""), (bar(value=(reading.level_dbfs - low) / (high - low), width=level_bar), level_style), (level_text, "")],
        [],
    ]
    column = max(NAME_WIDTH + VALUE_WIDTH + MIN_BAR, (width - 3) // 2)
    bar_width = column - NAME_WIDTH - VALUE_WIDTH
    left: list[Line] = [[("emotions".ljust(column), "bold underline")]]
    right: list[Line] = [[("mid-level features", "bold underline")]]
    for names, values, out, style in (
        (labels.EMOTIONS, reading.emotion, left, "green"),
        (labels.MID_LEVELS, reading.mid, right, "blue"),
    ):
        for index, name in enumerate(names):
            value = math.nan if values is None or reading.muted else float(values[index])
            shown = f" {value:4.2f}" if math.isfinite(value) else "    -"
            out.append([(name.ljust(NAME_WIDTH), ""), (bar(value=value, width=bar_width), style), (shown.ljust(VALUE_WIDTH), "")])
    right.append([])
    for left_row, right_row in zip(left, right):
        lines.append([*left_row, ("   ", ""), *right_row])
    lines += [[], [("moved most  ", "bold"), (describe_move(move=moved_most(history=history)), "")], [], [("outputs", "bold underline")]]
    if not outputs:
        lines.append([("  none", "")])
    for counts in outputs:
        lines.append([(f"  {counts.name}  delivered {counts.delivered}  ", ""), (f"dropped {counts.dropped}", "bold red" if counts.dropped else "green")])
    if log_lines:
        lines += [[], [("log", "bold underline")]]
        lines.extend([(f"  {line}", "yellow")] for line in log_lines[-LOG_LINES_SHOWN:])
    return lines


def plain(*, lines: Sequence[Line]) -> str:
    """The screen as plain text (no styles), one line per line."""
    return "\n".join("".join(text for text, _ in line) for line in lines)


class Screen:
    """Draws :func:`render`'s lines full-screen on a terminal: the alternate screen, the cursor hidden,
    each line cropped to the width, and only the lines that changed since the last frame rewritten.
    rich's :class:`~rich.console.Console` tells the colour system (none for ``NO_COLOR`` or a dumb
    terminal) and turns each style into its escape codes, once per style."""

    ENTER = "\x1b[?1049h\x1b[?25l\x1b[2J"
    LEAVE = "\x1b[?25h\x1b[?1049l"

    def __init__(self, *, stream: TextIO) -> None:
        from rich.console import Console

        self._stream = stream
        self._console = Console(file=stream, highlight=False)
        self._codes: dict[str, tuple[str, str]] = {}
        self._previous: list[str] = []
        self._size = (0, 0)
        self._entered = False

    @property
    def size(self) -> tuple[int, int]:
        """``(columns, lines)`` of the terminal."""
        try:
            size = os.get_terminal_size(self._stream.fileno())
            return size.columns, size.lines
        except (OSError, ValueError, AttributeError):
            return self._console.width, self._console.height

    def _style(self, *, name: str) -> tuple[str, str]:
        if name not in self._codes:
            codes = ("", "")
            if name and self._console.color_system is not None and not self._console.no_color:
                from rich.style import Style

                marked = Style.parse(name).render("\0", color_system=self._console.color_system)
                codes = tuple(marked.split("\0", 1)) if "\0" in marked else ("", "")
            self._codes[name] = codes
        return self._codes[name]

    def _line(self, *, line: Line, width: int) -> str:
        out, room = [], width
        for text, style in line:
            if room <= 0:
                break
            text = text[:room]
            room -= len(text)
            start, end = self._style(name=style)
            out.append(f"{start}{text}{end}")
        return "".join(out)

    def draw(self, *, lines: Sequence[Line]) -> int:
        """Show ``lines``; returns the number of characters written."""
        width, height = self.size
        parts = []
        if not self._entered:
            parts.append(self.ENTER)
            self._entered = True
        if (width, height) != self._size:
            self._size, self._previous = (width, height), []
            parts.append("\x1b[2J")
        frame = [self._line(line=line, width=width) for line in lines[:height]]
        for row, text in enumerate(frame):
            if row >= len(self._previous) or self._previous[row] != text:
                parts.append(f"\x1b[{row + 1};1H{text}\x1b[K")
        if len(frame) < len(self._previous):
            parts.append(f"\x1b[{len(frame) + 1};1H\x1b[J")
        self._previous = frame
        data = "".join(parts)
        if data:
            self._stream.write(data)
            self._stream.flush()
        return len(data)

    def close(self) -> None:
        if self._entered:
            self._entered = False
            self._stream.write(self.LEAVE)
            self._stream.flush()


class _Capture(logging.Handler):
    """Keeps formatted log lines (bounded) while the meter owns the terminal."""

    def __init__(self) -> None:
        super().__init__()
        self.records: collections.deque[logging.LogRecord] = collections.deque(maxlen=LOG_LINES_KEPT)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Meter:
    """The full-screen meter on ``stream`` (stdout); a sink of the output stage. :meth:`watch` gives it
    the stage's counters (every output's delivered and dropped updates) to show.

    While it runs, and when stderr is the same kind of terminal, the ``logger``'s messages are shown in
    the meter instead of being printed over it; they are printed to its handlers again on close."""

    name = "meter"

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        logger: logging.Logger = logging.getLogger("mer_live"),
        max_redraws_per_s: float = MAX_REDRAWS_PER_S,
    ) -> None:
        self._counts: Callable[[], Sequence[Counts]] = tuple
        self._screen = Screen(stream=stream or sys.stdout)
        self._interval = 1.0 / max_redraws_per_s
        self._latest: Reading | None = None
        self._history: collections.deque[Reading] = collections.deque(maxlen=HISTORY_LENGTH)
        self._new = threading.Event()
        self._closed = threading.Event()
        self.redraws = 0
        self._logger = logger
        self._capture: _Capture | None = None
        self._saved_handlers: list[logging.Handler] = []
        if bool(getattr(sys.stderr, "isatty", lambda: False)()):
            self._capture = _Capture()
            self._saved_handlers = logger.handlers[:]
            formatter = self._saved_handlers[0].formatter if self._saved_handlers else None
            self._capture.setFormatter(formatter or logging.Formatter("%(message)s"))
            logger.handlers[:] = [self._capture]
        self._thread = threading.Thread(target=self._draw_loop, name="mer-live-meter", daemon=True)
        self._thread.start()

    def watch(self, *, counts: Callable[[], Sequence[Counts]]) -> None:
        """Show the outputs' counters that ``counts`` returns (called on the drawing thread)."""
        self._counts = counts

    def process(self, *, reading: Reading) -> None:
        """Keep ``reading`` for the next redraw (cheap; called on the analysis thread)."""
        self._latest = reading
        if reading.is_update and reading.has_values:
            self._history.append(reading)
        self._new.set()

    def _draw_loop(self) -> None:
        last = -math.inf
        while not self._closed.is_set():
            self._new.wait()
            wait = last + self._interval - time.monotonic()
            if wait > 0 and self._closed.wait(wait):
                break
            self._new.clear()
            last = time.monotonic()
            self._draw()

    def _draw(self) -> None:
        capture = self._capture
        log_lines = [capture.format(r) for r in tuple(capture.records)[-LOG_LINES_SHOWN:]] if capture else []
        outputs = [counts for counts in self._counts() if counts.name != self.name]
        try:
            lines = render(reading=self._latest, history=tuple(self._history), outputs=outputs, log_lines=log_lines, width=self._screen.size[0])
            self._screen.draw(lines=lines)
            self.redraws += 1
        except (OSError, ValueError):  # the terminal went away: keep analysing, stop drawing
            self._closed.set()

    def reset(self) -> None:
        """Forget the history of readings (the move starts again)."""
        self._history.clear()

    def close(self) -> None:
        """Stop drawing, leave the full screen, and print the log lines it held back."""
        if self._thread is None:
            return
        self._closed.set()
        self._new.set()
        self._thread.join(STOP_TIMEOUT_S)
        self._thread = None
        try:
            self._screen.close()
        except (OSError, ValueError):
            pass
        if self._capture is not None:
            self._logger.handlers[:] = self._saved_handlers
            for record in self._capture.records:
                for handler in self._saved_handlers:
                    if record.levelno >= handler.level:
                        handler.handle(record)
            self._capture = None
