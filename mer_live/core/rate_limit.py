"""Rate-limited logging: the daemon must report trouble without flooding the log during a show."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_BURST = 1
DEFAULT_WINDOW_S = 10.0
DEFAULT_SUMMARY = "{count} more like this not shown in the last {window:.0f} s"


@dataclass
class _Window:
    start: float = -math.inf
    logged: int = 0
    suppressed: int = 0


class RateLimitedLog:
    """Logs at most ``burst`` messages per ``key`` in each ``window_s`` seconds.

    What is held back is counted, and one summary line (``summary``, formatted with ``count`` and
    ``window``) is logged when that key's next window opens. ``clock`` must be monotonic; it is
    injectable for tests.
    """

    def __init__(
        self,
        *,
        logger: logging.Logger,
        burst: int = DEFAULT_BURST,
        window_s: float = DEFAULT_WINDOW_S,
        level: int = logging.WARNING,
        prefix: str = "",
        summary: str = DEFAULT_SUMMARY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._window_s = window_s
        self._level = level
        self._prefix = prefix
        self._summary = summary
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def suppressed(self, *, key: str = "") -> int:
        """Messages under ``key`` held back in its current window so far."""
        window = self._windows.get(key)
        return window.suppressed if window else 0

    def log(self, *, message: str, key: str = "") -> bool:
        """Log ``message`` unless ``key``'s budget is spent; returns whether it was logged."""
        now = self._clock()
        window = self._windows.setdefault(key, _Window())
        if now - window.start >= self._window_s:
            if window.suppressed:
                text = self._summary.format(count=window.suppressed, window=self._window_s)
                self._logger.log(self._level, "%s%s", self._prefix, text)
            window.start, window.logged, window.suppressed = now, 0, 0
        if window.logged < self._burst:
            window.logged += 1
            self._logger.log(self._level, "%s%s", self._prefix, message)
            return True
        window.suppressed += 1
        return False
