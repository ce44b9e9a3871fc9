"""The DMX output: readings in, a channel map rendered at a steady frame rate out (sACN or Art-Net).

:class:`DmxSink` is a sink of the output stage: ``process(reading=...)`` runs on its lane thread and only
stores the reading's values (with the time they are due, ``delay_ms`` later); the sink's own
:class:`~.sender.FrameClock` renders every frame. When an update falls due, the map turns it into each
channel's target once (:meth:`~.channel_map.Renderer.target`); every frame then moves linearly from the
previous targets to these over one update interval and applies the fades
(:meth:`~.channel_map.Renderer.follow`), so the lights fade between the analysis's 4 or 10 updates a
second rather than stepping, and a frame costs a dozen small array operations. A dead network, a vanished receiver or a slow resolver only fail DMX frames
(counted); the analysis and the other outputs never wait for them.

``delivered`` / ``dropped`` count updates as the output stage expects: an update is delivered when the
frame before it went out. :meth:`set_override` lets a cue trigger hold a channel at a value.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mer_live.core.reading import Reading
from mer_live.outputs.base import DELAY_RANGE_MS, MS_PER_S
from mer_live.outputs.dmx import signals
from mer_live.outputs.dmx.channel_map import ChannelMap, Renderer
from mer_live.outputs.dmx.sender import DEFAULT_FPS, DEFAULT_KEEPALIVE_S, FrameClock, Transport
from mer_live.outputs.dmx.venue import RollingRange, VenueProfile

DEFAULT_RELATIVE_MINUTES = 5.0
INTERVAL_RANGE_S = (0.02, 1.0)  # interpolation spans one update interval, measured, within these bounds


@dataclass
class _Update:
    due: float
    values: np.ndarray | None
    silent: bool


class DmxSink:
    """See the module docstring. ``universe_base``: the wire universe of the map's universe 1 (sACN:
    1-63999; Art-Net: the port address, net*256 + subnet*16 + universe)."""

    def __init__(
        self, *, channel_map: ChannelMap, transport_factory: Callable[[list[int]], Transport], universe_base: int = 1,
        fps: float = DEFAULT_FPS, keepalive_s: float = DEFAULT_KEEPALIVE_S, delay_ms: float = 0.0,
        venue: VenueProfile | None = None, relative_minutes: float = DEFAULT_RELATIVE_MINUTES,
        clock: Callable[[], float] = time.monotonic, start: bool = True,
    ) -> None:
        low, high = DELAY_RANGE_MS
        if not low <= delay_ms <= high:
            raise ValueError(f"DMX delay {delay_ms:g} ms is out of range; use {low:g} to {high:g}")
        self.channel_map = channel_map
        self._renderer = Renderer(channel_map)
        self._rolling = self._ranges(venue=venue, relative_minutes=relative_minutes)
        wire = [universe_base + universe - 1 for universe in self._renderer.universes]
        self._row_of = {universe: row for row, universe in enumerate(self._renderer.universes)}
        transport = transport_factory(wire)
        self.name = f"dmx {transport.label}"
        self._delay_s = delay_ms / MS_PER_S
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: collections.deque[_Update] = collections.deque()
        self._from: np.ndarray | None = None
        self._to: np.ndarray | None = None
        self._start = 0.0
        self._interval = INTERVAL_RANGE_S[1]
        self._last_update: float | None = None
        self._silent = False
        self._mix = np.zeros(0)  # the interpolated targets (one per rendered unit), made with the first frame
        self._values: np.ndarray | None = None  # the last update's signal vector
        self._overrides: dict[tuple[int, int], int] = {}
        self._released: list[tuple[int, int]] = []  # overridden slots let go: back to 0 unless the map drives them
        self.delivered = 0
        self.dropped = 0
        self.frames = FrameClock(transport=transport, render=self._render, fps=fps, keepalive_s=keepalive_s, clock=clock, name="dmx")
        if start:
            self.frames.start()

    def _ranges(self, *, venue: VenueProfile | None, relative_minutes: float) -> RollingRange | None:
        """Apply the venue profile's ranges; the rolling ranges of the relative mode, if the map uses it."""
        renderer = self._renderer
        if renderer.venue_units.any():
            if venue is None:
                raise ValueError(f"{self.channel_map.path}: the map uses range = \"venue\": give a venue profile "
                                 "([dmx] venue = FILE, made by mer-live calibrate)")
            names = [signals.NAMES[i] for i in renderer.sources[renderer.venue_units]]
            ranges = [venue.ranges.get(name, signals.default_range(name)) for name in names]
            renderer.set_ranges(renderer.venue_units, np.array([r[0] for r in ranges]), np.array([r[1] for r in ranges]))
        if not renderer.relative_units.any():
            return None
        indices = np.unique(renderer.sources[renderer.relative_units])
        self._relative_columns = np.searchsorted(indices, renderer.sources[renderer.relative_units])
        return RollingRange(indices=indices, minutes=relative_minutes)

    # -------------------------------------------------------------- lane thread
    def process(self, *, reading: Reading) -> None:
        values = None if reading.muted else signals.vector(reading)  # muted (control port): the lights hold
        if self._rolling is not None and values is not None and reading.is_update and not signals.is_silent(reading):
            found = self._rolling.add(values, now=reading.stream_time_s)
            if found is not None:
                low, high = found
                columns = self._relative_columns
                self._renderer.set_ranges(self._renderer.relative_units, low[columns], high[columns])
        with self._lock:
            self._pending.append(_Update(due=self._clock() + self._delay_s, values=values, silent=signals.is_silent(reading)))
        if reading.is_update:
            if self.frames.ok:
                self.delivered += 1
            else:
                self.dropped += 1

    def set_override(self, *, universe: int, address: int, value: int | None) -> None:
        """Hold slot ``address`` (1-512) of the map's ``universe`` at ``value`` (0-255), or let it go (None)."""
        row = self._row_of.get(universe)
        if row is None:
            raise ValueError(f"universe {universe} is not in the DMX map (it uses {', '.join(map(str, self._row_of))})")
        with self._lock:
            if value is None:
                if self._overrides.pop((row, address), None) is not None:
                    self._released.append((row, address))
            else:
                self._overrides[(row, address)] = int(value)

    def close(self) -> None:
        self.frames.close()

    # ------------------------------------------------------------ frame thread
    def _take_due(self, now: float) -> None:
        """Apply the updates that are due: the targets move from where they are now to the new update's."""
        if not self._pending:
            return
        with self._lock:
            while self._pending and self._pending[0].due <= now:
                update = self._pending.popleft()
                if update.values is None and update.silent == self._silent:
                    continue  # a heartbeat before the first values, or while muted: nothing changes
                self._silent = update.silent
                values = update.values if update.values is not None else self._values
                self._values = values
                target = self._renderer.target(values, silent=update.silent)
                if self._to is None:
                    self._from, self._mix = target, np.empty_like(target)
                else:
                    self._from = self._current(now).copy()
                self._to = target
                if self._last_update is not None:
                    low, high = INTERVAL_RANGE_S
                    self._interval = min(high, max(low, update.due - self._last_update))
                self._last_update = update.due
                self._start = now

    def _current(self, now: float) -> np.ndarray:
        progress = min(1.0, max(0.0, (now - self._start) / self._interval))
        if progress >= 1.0:
            return self._to
        np.subtract(self._to, self._from, out=self._mix)
        self._mix *= progress
        self._mix += self._from
        return self._mix

    def _render(self, now: float, dt: float, frame: np.ndarray) -> None:
        self._take_due(now)
        if self._to is None:  # no update yet: the rest values
            self._from = self._to = self._renderer.target(None, silent=False)
            self._mix = np.empty_like(self._to)
        self._renderer.follow(self._current(now), silent=self._silent, dt=dt, frame=frame)
        if self._overrides or self._released:
            with self._lock:
                if self._released:
                    for row, address in self._released:
                        frame[row, address - 1] = 0
                    self._released.clear()
                    self._renderer.render_again(frame)  # a released slot the map also drives
                for (row, address), value in self._overrides.items():
                    frame[row, address - 1] = value
