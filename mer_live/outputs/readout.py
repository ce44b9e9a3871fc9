"""The live one-line readout on stderr: a sink for people watching the terminal.

Rewritten in place on a terminal, one line every few seconds otherwise (a log file, a pipe).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from mer_live.core import labels
from mer_live.core.reading import Reading

READOUT_TTY_INTERVAL_S = 0.25
READOUT_PIPE_INTERVAL_S = 5.0
SHORT_NAMES = {name: name[:4] for name in labels.EMOTIONS}


class Readout:
    """The live one-line readout on stderr: rewritten in place on a terminal, a line every few seconds
    otherwise."""

    def __init__(self, *, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._interval = READOUT_TTY_INTERVAL_S if self._tty else READOUT_PIPE_INTERVAL_S
        self._last = -float("inf")
        self._dirty = False

    @staticmethod
    def line(*, reading: Reading) -> str:
        text = f"{reading.stream_time_s:7.1f} s {reading.state:<8} {reading.level_dbfs:6.1f} dBFS"
        if reading.has_values and not reading.muted:
            values = " ".join(f"{SHORT_NAMES[n]} {v:.2f}" for n, v in zip(labels.EMOTIONS, reading.emotion))
            top = int(max(range(labels.NUM_EMOTIONS), key=lambda e: reading.emotion[e]))
            driver = int(max(range(labels.NUM_MID_LEVELS), key=lambda m: abs(reading.contributions[top][m])))
            text += f" | {values} | {labels.EMOTIONS[top]} <- {labels.MID_LEVELS[driver]}"
        elif reading.muted:
            text += " | muted"
        return text + f" | upd {reading.updates} ovf {reading.overflows}"

    def process(self, *, reading: Reading) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        try:
            if self._tty:
                self._stream.write("\r" + self.line(reading=reading) + "\x1b[K")
                self._dirty = True
            else:
                self._stream.write(self.line(reading=reading) + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            return

    def close(self) -> None:
        if self._dirty:
            self._dirty = False
            try:
                self._stream.write("\n")
                self._stream.flush()
            except (OSError, ValueError):
                return
