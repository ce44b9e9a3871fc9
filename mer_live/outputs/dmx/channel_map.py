"""Channel maps: which value drives which DMX channel, and how (``configs/dmx/*.toml``, docs/guide/lighting.md).

A map file has ``[[channel]]`` tables (one value -> one channel, or a bar of ``bar`` channels),
``[[fixture]]`` tables (an RGB or RGBW colour from a hue value and a brightness value) and an optional
``[defaults]`` table of channel keys that the others inherit. :func:`load` parses and checks it; every
mistake is a :class:`MapError` whose one line names the file, the line and the reason.

:class:`Renderer` turns the map into numpy arrays once and then renders a frame (``(universes, 512)``
uint8) from a signal vector (:mod:`.signals`) with numpy only, so a frame costs the same few dozen
array operations whether the map has 3 channels or 1024. Per channel, in order: the input ``range`` is
mapped to 0-1 and clipped, the ``curve`` applied (``linear``, ``gamma``, ``s-curve``), ``invert``, the bar
segment taken, then the silence rule (``on_silence = "rest"``: go to ``rest`` over ``rest_fade_s``;
``"hold"``: keep following), the ``fade_s`` time constant and the ``slew`` limit (full scale per
second), and finally the ``output`` range in DMX values, 8-bit or 16-bit (coarse then fine: MSB first).
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from mer_live.outputs.dmx import signals
from mer_live.outputs.dmx.packets import SLOTS

CURVES = ("linear", "gamma", "s-curve")
RANGE_MODES = ("venue", "relative")
SILENCE_RULES = ("hold", "rest")
FIXTURE_KINDS = {"rgb": ("red", "green", "blue"), "rgbw": ("red", "green", "blue", "white")}
BITS = (8, 16)
MAX_VALUE = {8: 255, 16: 65535}
MAX_UNIVERSES = 64  # logical universes a map may use (sACN allows 63999; a frame clock at 44 Hz should not)
MAX_TIME_S = 600.0
DEFAULT_GAMMA = 2.2
DEFAULT_REST_FADE_S = 2.0
DEFAULT_HUE_RANGE = (240.0, 0.0)  # hue source 0 -> blue, 1 -> red
DEGREES = 360.0
ALPHA_DT_STEP_S = 1e-4  # frame lengths this close share one cached fade step
ALPHA_CACHE = 64
TINY_S = 1e-9  # a time constant's floor in the fade arithmetic (0 means no fade: handled apart)

COMMON_KEYS = ("universe", "bits", "curve", "gamma", "invert", "fade_s", "slew", "on_silence", "rest", "rest_fade_s", "output")
CHANNEL_KEYS = ("label", "address", "source", "range", "bar", *COMMON_KEYS)
FIXTURE_KEYS = ("label", "address", "kind", "hue", "hue_range", "saturation", "brightness", *COMMON_KEYS)
TOP_KEYS = ("name", "description", "defaults", "channel", "fixture")


class MapError(ValueError):
    """A bad channel map: ``FILE:LINE: reason`` on one line."""


@dataclass(frozen=True)
class Shape:
    """How a channel's 0-1 value becomes DMX (the keys every channel and fixture share)."""

    universe: int = 1
    bits: int = 8
    curve: str = "linear"
    gamma: float = DEFAULT_GAMMA
    invert: bool = False
    fade_s: float = 0.0
    slew: float = 0.0
    on_silence: str = "hold"
    rest: float = 0.0
    rest_fade_s: float = DEFAULT_REST_FADE_S
    output: tuple[int, int] | None = None  # DMX values at ``bits``; None = the full range

    @property
    def width(self) -> int:
        return self.bits // 8

    @property
    def output_range(self) -> tuple[int, int]:
        return self.output if self.output is not None else (0, MAX_VALUE[self.bits])


@dataclass(frozen=True)
class Channel:
    """One value -> ``bar`` consecutive channels (1: a plain channel) from ``address``."""

    label: str
    address: int
    source: str
    range: tuple[float, float]
    shape: Shape
    bar: int = 1
    line: int = 0
    range_mode: str = "fixed"  # "venue": the venue profile's working range; "relative": the rolling percentiles

    @property
    def slots(self) -> int:
        return self.bar * self.shape.width


@dataclass(frozen=True)
class Fixture:
    """An RGB(W) colour: hue from ``hue`` (its range mapped onto ``hue_range`` degrees), ``saturation``
    (a number or a value) and brightness from ``brightness``."""

    label: str
    address: int
    kind: str
    hue: str
    hue_range: tuple[float, float]
    saturation: str | float
    brightness: str
    shape: Shape
    line: int = 0

    @property
    def slots(self) -> int:
        return len(FIXTURE_KINDS[self.kind]) * self.shape.width


@dataclass(frozen=True)
class ChannelMap:
    """A checked map: its channels and fixtures, and the logical universes they use (sorted)."""

    path: str
    name: str
    description: str
    channels: tuple[Channel, ...]
    fixtures: tuple[Fixture, ...]

    @property
    def universes(self) -> tuple[int, ...]:
        return tuple(sorted({item.shape.universe for item in (*self.channels, *self.fixtures)}))

    def describe(self) -> str:
        """The patch as a table (``mer-live dmx check``)."""
        rows = [f"{self.name or Path(self.path).stem}: {len(self.channels)} channel rule(s), {len(self.fixtures)} fixture(s), "
                f"universe(s) {', '.join(map(str, self.universes)) or 'none'}",
                f"{'univ':>4} {'slots':>9}  {'bits':>4}  {'label':<18} {'source':<34} shape"]
        for universe, first, last, label, source, shape in sorted(_patch_rows(self)):
            rows.append(f"{universe:>4} {first:>4}-{last:<4}  {shape.bits:>4}  {label:<18.18} {source:<34.34} {_shape_text(shape)}")
        return "\n".join(rows)


def _shape_text(shape: Shape) -> str:
    parts = [shape.curve + (f" {shape.gamma:g}" if shape.curve == "gamma" else "")]
    if shape.invert:
        parts.append("inverted")
    if shape.output is not None:
        parts.append(f"out {shape.output[0]}-{shape.output[1]}")
    if shape.fade_s:
        parts.append(f"fade {shape.fade_s:g} s")
    if shape.slew:
        parts.append(f"slew {shape.slew:g}/s")
    parts.append(f"silence: rest {shape.rest:g} in {shape.rest_fade_s:g} s" if shape.on_silence == "rest" else "silence: hold")
    return ", ".join(parts)


def _patch_rows(channel_map: ChannelMap):
    for channel in channel_map.channels:
        source = channel.source + (f" [{channel.range[0]:g}, {channel.range[1]:g}]" if channel.range_mode == "fixed" else f" ({channel.range_mode})")
        if channel.bar > 1:
            source += f" bar of {channel.bar}"
        yield channel.shape.universe, channel.address, channel.address + channel.slots - 1, channel.label, source, channel.shape
    for fixture in channel_map.fixtures:
        source = f"{fixture.kind}: hue {fixture.hue}, bright {fixture.brightness}"
        yield fixture.shape.universe, fixture.address, fixture.address + fixture.slots - 1, fixture.label, source, fixture.shape


# ------------------------------------------------------------------------------------------ parsing

_HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_-]+)\s*\]\]")
_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_-]+)\s*\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


class _Lines:
    """Where each table and key is in the file's text (tomllib gives no positions): ``line(table, index, key)``."""

    def __init__(self, text: str) -> None:
        self._tables: dict[tuple[str, int], tuple[int, dict[str, int]]] = {}
        counts: dict[str, int] = {}
        top: dict[str, int] = {}
        current = top
        self._tables[("", 0)] = (1, top)
        for number, line in enumerate(text.split("\n"), start=1):  # TOML lines end at \n only (not at U+2028)
            header = _HEADER.match(line) or _TABLE.match(line)
            if header:
                name = header.group(1)
                index = counts.get(name, 0)
                counts[name] = index + 1
                current = {}
                self._tables[(name, index)] = (number, current)
                continue
            key = _KEY.match(line)
            if key:
                current.setdefault(key.group(1), number)

    def line(self, table: str, index: int, key: str | None = None) -> int:
        header, keys = self._tables.get((table, index), (1, {}))
        return keys.get(key, header) if key else header


class _Checker:
    def __init__(self, *, path: str, lines: _Lines) -> None:
        self.path, self.lines = path, lines

    def fail(self, table: str, index: int, key: str | None, reason: str) -> MapError:
        where = f"{table} {index + 1}: " if table not in ("", "defaults") else ""
        return MapError(f"{self.path}:{self.lines.line(table, index, key)}: {where}{reason}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_source(name: Any, *, fail) -> str:
    if not isinstance(name, str) or name not in signals.INDEX:
        raise fail(f"source {name!r} is not a value mer-live sends; use emotion.NAME, mid.NAME, "
                   "contribution.EMOTION.MID, level or silence (mer-live dmx check --sources lists them)")
    return name


def _pair(value: Any, *, key: str, fail, integers: bool = False) -> tuple[float, float]:
    ok = isinstance(value, list) and len(value) == 2 and all(_number(v) and (not integers or isinstance(v, int)) for v in value)
    if not ok:
        kind = "integers" if integers else "numbers"
        raise fail(f"{key} must be a list of two {kind} [low, high], got {value!r}")
    return (value[0], value[1]) if integers else (float(value[0]), float(value[1]))


def _shape(entries: dict[str, Any], *, base: Shape, fail_key) -> Shape:
    """``base`` with the common keys of ``entries`` applied and checked."""
    changes: dict[str, Any] = {}
    for key in COMMON_KEYS:
        if key not in entries:
            continue
        value, fail = entries[key], fail_key(key)
        if key == "universe":
            integer(value, key="universe", low=1, high=MAX_UNIVERSES, fail=fail)
        elif key == "bits":
            if value not in BITS or isinstance(value, bool):
                raise fail(f"bits {value!r}; use 8 or 16 (16: coarse then fine, MSB first)")
        elif key == "curve":
            if value not in CURVES:
                raise fail(f"curve {value!r}; use {', '.join(CURVES)}")
        elif key == "on_silence":
            if value not in SILENCE_RULES:
                raise fail(f"on_silence {value!r}; use hold or rest")
        elif key == "invert":
            if not isinstance(value, bool):
                raise fail(f"invert must be true or false, got {value!r}")
        elif key == "output":
            value = _pair(value, key=key, fail=fail, integers=True)
        elif key == "rest":
            if not (_number(value) and 0.0 <= value <= 1.0):
                raise fail(f"rest {value!r} is out of range; use 0 to 1 (a fraction of the output range)")
            value = float(value)
        elif key == "gamma":
            if not (_number(value) and 0.05 <= value <= 20.0):
                raise fail(f"gamma {value!r} is out of range; use 0.05 to 20")
            value = float(value)
        else:  # fade_s, slew, rest_fade_s
            if not (_number(value) and 0.0 <= value <= MAX_TIME_S):
                raise fail(f"{key} {value!r} is out of range; use 0 to {MAX_TIME_S:g}")
            value = float(value)
        changes[key] = value
    shape = dataclasses.replace(base, **changes)
    if shape.output is not None:
        low, high = shape.output
        top = MAX_VALUE[shape.bits]
        if not (0 <= low <= top and 0 <= high <= top):
            raise fail_key("output")(f"output {list(shape.output)} is out of range for {shape.bits}-bit; use 0 to {top}")
    return shape


def _unknown(entries: dict[str, Any], *, allowed: tuple[str, ...], fail_key, what: str) -> None:
    for key in entries:
        if key not in allowed:
            raise fail_key(key)(f"unknown key {key!r} in {what} (known: {', '.join(allowed)})")


def integer(value: Any, *, key: str, low: int, high: int, fail) -> int:
    """``value`` when it is an integer from ``low`` to ``high``; else ``fail(reason)`` is raised."""
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise fail(f"{key} {value!r} is out of range; use {low} to {high}")
    return value


def _address(entries: dict[str, Any], *, fail_key) -> int:
    if "address" not in entries:
        raise fail_key(None)("address is missing (the first DMX channel, 1 to 512)")
    return integer(entries["address"], key="address", low=1, high=SLOTS, fail=fail_key("address"))


def read_toml(text: str, *, path: str, error: type[MapError]) -> dict[str, Any]:
    """``text`` parsed; a syntax error is ``error("PATH:LINE: not valid TOML (...)")``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:
        match = re.search(r"line (\d+)", str(problem))
        raise error(f"{path}:{match.group(1) if match else 1}: not valid TOML ({problem})") from problem


def tables(data: dict[str, Any], name: str, *, fail) -> list[dict[str, Any]]:
    """The ``[[name]]`` tables of ``data`` (none: an empty list); anything else there is ``fail(reason)``."""
    found = data.get(name, [])
    if not isinstance(found, list) or not all(isinstance(t, dict) for t in found):
        raise fail(f"{name} must be tables [[{name}]]")
    return found


def parse(text: str, *, path: str = "<map>") -> ChannelMap:
    """The checked map in ``text`` (``path`` names it in errors); raises :class:`MapError`."""
    data = read_toml(text, path=path, error=MapError)
    check = _Checker(path=path, lines=_Lines(text))
    top_fail = lambda key: lambda reason: check.fail("", 0, key, reason)  # noqa: E731
    _unknown(data, allowed=TOP_KEYS, fail_key=top_fail, what="the map")
    for key in ("name", "description"):
        if not isinstance(data.get(key, ""), str):
            raise top_fail(key)(f"{key} must be a string")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise top_fail("defaults")("defaults must be a table [defaults]")
    default_fail = lambda key: lambda reason: check.fail("defaults", 0, key, reason)  # noqa: E731
    _unknown(defaults, allowed=COMMON_KEYS, fail_key=default_fail, what="[defaults]")
    base = _shape(defaults, base=Shape(), fail_key=default_fail)

    channels = []
    for index, entries in enumerate(tables(data, "channel", fail=top_fail("channel"))):
        fail_key = lambda key, index=index: lambda reason: check.fail("channel", index, key, reason)  # noqa: E731
        _unknown(entries, allowed=CHANNEL_KEYS, fail_key=fail_key, what="[[channel]]")
        address = _address(entries, fail_key=fail_key)
        if "source" not in entries:
            raise fail_key(None)("source is missing (e.g. source = \"emotion.energy\")")
        source = _check_source(entries["source"], fail=fail_key("source"))
        range_mode = entries.get("range") if entries.get("range") in RANGE_MODES else "fixed"
        if "range" in entries and range_mode == "fixed":
            if isinstance(entries["range"], str):
                raise fail_key("range")(f"range {entries['range']!r}; use [low, high], \"venue\" or \"relative\"")
            value_range = _pair(entries["range"], key="range", fail=fail_key("range"))
        else:
            value_range = signals.default_range(source)
        if value_range[0] == value_range[1]:
            raise fail_key("range")(f"range {list(value_range)} is empty; give two different numbers")
        bar = integer(entries.get("bar", 1), key="bar", low=1, high=SLOTS, fail=fail_key("bar"))
        label = entries.get("label", source)
        if not isinstance(label, str):
            raise fail_key("label")("label must be a string")
        channels.append(Channel(label=label, address=address, source=source, range=value_range, range_mode=range_mode,
                                shape=_shape(entries, base=base, fail_key=fail_key), bar=bar, line=check.lines.line("channel", index)))

    fixtures = []
    for index, entries in enumerate(tables(data, "fixture", fail=top_fail("fixture"))):
        fail_key = lambda key, index=index: lambda reason: check.fail("fixture", index, key, reason)  # noqa: E731
        _unknown(entries, allowed=FIXTURE_KEYS, fail_key=fail_key, what="[[fixture]]")
        address = _address(entries, fail_key=fail_key)
        kind = entries.get("kind", "rgb")
        if kind not in FIXTURE_KINDS:
            raise fail_key("kind")(f"kind {kind!r}; use {' or '.join(FIXTURE_KINDS)}")
        hue = _check_source(entries.get("hue", "emotion.valence"), fail=fail_key("hue"))
        brightness = _check_source(entries.get("brightness", "emotion.energy"), fail=fail_key("brightness"))
        saturation = entries.get("saturation", 1.0)
        if _number(saturation):
            if not 0.0 <= saturation <= 1.0:
                raise fail_key("saturation")(f"saturation {saturation!r} is out of range; use 0 to 1, or a value's name")
            saturation = float(saturation)
        else:
            saturation = _check_source(saturation, fail=fail_key("saturation"))
        hue_range = _pair(entries["hue_range"], key="hue_range", fail=fail_key("hue_range")) if "hue_range" in entries else DEFAULT_HUE_RANGE
        label = entries.get("label", f"{kind} fixture")
        if not isinstance(label, str):
            raise fail_key("label")("label must be a string")
        fixtures.append(Fixture(label=label, address=address, kind=kind, hue=hue, hue_range=hue_range, saturation=saturation,
                                brightness=brightness, shape=_shape(entries, base=base, fail_key=fail_key),
                                line=check.lines.line("fixture", index)))
    result = ChannelMap(path=path, name=data.get("name", ""), description=data.get("description", ""),
                        channels=tuple(channels), fixtures=tuple(fixtures))
    _check_slots(result, check=check)
    return result


def _check_slots(channel_map: ChannelMap, *, check: _Checker) -> None:
    """Every rule fits its universe's 512 slots, and no slot is driven twice."""
    taken: dict[tuple[int, int], tuple[str, int]] = {}
    items = [("channel", i, c) for i, c in enumerate(channel_map.channels)] + [("fixture", i, f) for i, f in enumerate(channel_map.fixtures)]
    for table, index, item in items:
        last = item.address + item.slots - 1
        if last > SLOTS:
            raise check.fail(table, index, "address", f"slots {item.address}-{last} run past slot {SLOTS} of universe "
                             f"{item.shape.universe}; start lower or put the rest in another universe")
        for slot in range(item.address, last + 1):
            other = taken.get((item.shape.universe, slot))
            if other is not None:
                raise check.fail(table, index, "address", f"slot {slot} of universe {item.shape.universe} is already driven "
                                 f"by {other[0]} (line {other[1]})")
            taken[(item.shape.universe, slot)] = (f"{table} {index + 1}", item.line)
    if not taken:
        raise check.fail("", 0, None, "the map drives no channel; add [[channel]] or [[fixture]] tables")


def load(path: str | Path) -> ChannelMap:
    """Read and check the map at ``path``; raises :class:`MapError` (one line: file, line, reason)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise MapError(f"{path}:0: no such map file (shipped maps: {', '.join(shipped_names())})") from error
    except (OSError, UnicodeDecodeError) as error:
        raise MapError(f"{path}:0: cannot read the map ({error})") from error
    return parse(text, path=str(path))


SHIPPED_DIR = Path(__file__).with_name("maps")


def shipped_names() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.toml"))


def resolve(spec: str) -> Path:
    """A map file path, or the name of a shipped map (``rgb-wash``)."""
    path = Path(spec)
    if path.exists() or path.suffix == ".toml" or "/" in spec:
        return path
    return SHIPPED_DIR / f"{spec}.toml"


# ---------------------------------------------------------------------------------------- rendering

_CURVE_CODE = {name: code for code, name in enumerate(CURVES)}


class Renderer:
    """A map compiled to arrays; :meth:`render` fills a frame ``(len(universes), 512)`` uint8."""

    def __init__(self, channel_map: ChannelMap) -> None:
        self.universes = channel_map.universes
        row_of = {universe: row for row, universe in enumerate(self.universes)}
        fixtures = channel_map.fixtures
        base = len(signals.NAMES)
        units: list[dict[str, Any]] = []
        for channel in channel_map.channels:
            for index in range(channel.bar):
                units.append({"src": signals.INDEX[channel.source], "range": channel.range, "mode": channel.range_mode, "shape": channel.shape,
                              "bar": (channel.bar, index), "slot": channel.address + index * channel.shape.width})
        for number, fixture in enumerate(fixtures):
            for component in range(len(FIXTURE_KINDS[fixture.kind])):
                units.append({"src": base + 4 * number + component, "range": signals.UNIT_RANGE, "shape": fixture.shape,
                              "bar": (1, 0), "slot": fixture.address + component * fixture.shape.width})
        column = lambda f, dtype=float: np.array([f(u) for u in units], dtype=dtype)  # noqa: E731
        self._src = column(lambda u: u["src"], np.intp)
        self.venue_units = column(lambda u: u.get("mode") == "venue", bool)
        self.relative_units = column(lambda u: u.get("mode") == "relative", bool)
        self._range = (column(lambda u: u["range"][0]), column(lambda u: u["range"][1] - u["range"][0]))  # low, span
        self._curve = column(lambda u: _CURVE_CODE[u["shape"].curve], np.intp)
        self._gamma = column(lambda u: u["shape"].gamma)
        self._invert = column(lambda u: u["shape"].invert, bool)
        self._bar_count = column(lambda u: u["bar"][0])
        self._bar_index = column(lambda u: u["bar"][1])
        self._fade = column(lambda u: u["shape"].fade_s)
        self._slew = column(lambda u: u["shape"].slew)
        self._rests = column(lambda u: u["shape"].on_silence == "rest", bool)
        self._rest = column(lambda u: u["shape"].rest)
        self._rest_fade = column(lambda u: u["shape"].rest_fade_s)
        self._out_low = column(lambda u: u["shape"].output_range[0])
        self._out_span = column(lambda u: u["shape"].output_range[1] - u["shape"].output_range[0])
        sixteen = column(lambda u: u["shape"].bits == 16, bool)
        flat = column(lambda u: row_of[u["shape"].universe] * SLOTS + u["slot"] - 1, np.intp)
        self._is16 = sixteen
        self._flat8, self._flat16 = flat[~sixteen], flat[sixteen]
        self._is_gamma = self._curve == _CURVE_CODE["gamma"]
        self._is_scurve = self._curve == _CURVE_CODE["s-curve"]
        self._any_gamma, self._any_scurve = bool(self._is_gamma.any()), bool(self._is_scurve.any())
        self._any_invert, self._any_bar = bool(self._invert.any()), bool((self._bar_count > 1).any())
        self._any_fade, self._any_slew = bool((self._fade > 0).any()), bool((self._slew > 0).any())
        self._any_rest = bool(self._rests.any())
        self._any8, self._any16 = bool((~sixteen).any()), bool(sixteen.any())
        self._signals = np.zeros(base + 4 * len(fixtures))
        self._fixtures = _FixtureColours(fixtures, base=base) if fixtures else None
        self._value: np.ndarray | None = None  # the smoothed 0-1 value of every unit
        self._alphas: dict[tuple[int, bool], np.ndarray] = {}
        self.units = len(units)

    def reset(self) -> None:
        self._value = None

    @property
    def sources(self) -> np.ndarray:
        """The signal index of every unit (``(units,)``; fixture colours point past the signals)."""
        return self._src

    def set_ranges(self, mask: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
        """Give the units in ``mask`` the input ranges ``low``-``high`` (``(mask.sum(),)`` each); the new
        arrays replace the old ones whole, so a frame being rendered on another thread sees one or the other."""
        new_low, new_span = self._range[0].copy(), self._range[1].copy()
        new_low[mask] = low
        new_span[mask] = np.where(high != low, high - low, 1.0)
        self._range = (new_low, new_span)

    def target(self, values: np.ndarray | None, *, silent: bool) -> np.ndarray:
        """Every unit's 0-1 target for the signal vector ``values`` (``(len(signals.NAMES),)``; None: nothing
        yet, every channel at its rest value): range, curve, invert, bar segment and the silence rule, with
        the steps no channel uses skipped. Returns ``(units,)``."""
        if values is None:
            return self._rest.copy()
        ext = self._signals
        ext[: len(values)] = values
        if self._fixtures is not None:
            self._fixtures.compute(ext)
        low, span = self._range
        unit = _unit((ext[self._src] - low) / span)
        if self._any_gamma:
            unit = np.where(self._is_gamma, unit ** self._gamma, unit)
        if self._any_scurve:
            unit = np.where(self._is_scurve, unit * unit * (3.0 - 2.0 * unit), unit)
        if self._any_invert:
            unit = np.where(self._invert, 1.0 - unit, unit)
        target = _unit(unit * self._bar_count - self._bar_index) if self._any_bar else unit
        if silent and self._any_rest:
            target = np.where(self._rests, self._rest, target)
        return target

    def render(self, values: np.ndarray | None, *, silent: bool, dt: float, frame: np.ndarray) -> None:
        """Render one frame from the signal vector ``values`` (see :meth:`target`), ``dt`` seconds after
        the last frame, into ``frame``."""
        self.follow(self.target(values, silent=silent), silent=silent, dt=dt, frame=frame)

    def follow(self, target: np.ndarray, *, silent: bool, dt: float, frame: np.ndarray) -> None:
        """Move every unit towards ``target`` (:meth:`target`) by one frame of ``dt`` seconds (fades, slew)
        and write the frame."""
        if self._value is None or not (self._any_fade or self._any_slew or (silent and self._any_rest)):
            value = target
        else:
            alpha = self._alpha(dt=dt, silent=silent)
            value = self._value + alpha * (target - self._value)
            if self._any_slew:
                step = self._slew * dt
                value = np.where(self._slew > 0.0, self._value + np.minimum(np.maximum(value - self._value, -step), step), value)
        self._value = value
        self.render_again(frame)

    def _alpha(self, *, dt: float, silent: bool) -> np.ndarray:
        """Each unit's fade step for a frame ``dt`` long (cached: frames are nearly all one period long)."""
        key = (round(dt / ALPHA_DT_STEP_S), silent)
        alpha = self._alphas.get(key)
        if alpha is None:
            if len(self._alphas) > ALPHA_CACHE:
                self._alphas.clear()
            tau = np.where(self._rests, self._rest_fade, self._fade) if silent else self._fade
            alpha = self._alphas[key] = np.where(tau > 0.0, -np.expm1(-dt / np.maximum(tau, TINY_S)), 1.0)
        return alpha

    def render_again(self, frame: np.ndarray) -> None:
        """Write the last rendered values into ``frame`` again (after a slot was overwritten)."""
        if self._value is None:
            return
        out = np.multiply(self._value, self._out_span)
        out += self._out_low
        np.rint(out, out=out)  # whole DMX values, as floats (exact up to 65535)
        flat = frame.reshape(-1)
        if not self._any16:
            flat[self._flat8] = out
            return
        if self._any8:
            flat[self._flat8] = out[~self._is16]
        wide = out[self._is16]
        coarse = np.floor_divide(wide, 256.0)
        flat[self._flat16] = coarse
        flat[self._flat16 + 1] = wide - 256.0 * coarse


def _unit(values: np.ndarray) -> np.ndarray:
    """``values`` clipped to 0-1 in place (np.clip's wrapper costs more than the work on a few dozen values)."""
    np.maximum(values, 0.0, out=values)
    return np.minimum(values, 1.0, out=values)


class _FixtureColours:
    """The RGB(W) components of every fixture, 4 per fixture, written after the signals. Plain Python
    (colorsys): for the few fixtures of a rig it is several times cheaper than a dozen numpy calls."""

    def __init__(self, fixtures: tuple[Fixture, ...], *, base: int) -> None:
        self._base = base
        self._rows = []
        for fixture in fixtures:
            hue_low, hue_high = signals.default_range(fixture.hue)
            bright_low, bright_high = signals.default_range(fixture.brightness)
            saturation = fixture.saturation
            self._rows.append((
                signals.INDEX[fixture.hue], hue_low, hue_high - hue_low, fixture.hue_range[0], fixture.hue_range[1] - fixture.hue_range[0],
                signals.INDEX[fixture.brightness], bright_low, bright_high - bright_low,
                signals.INDEX[saturation] if isinstance(saturation, str) else None, saturation if not isinstance(saturation, str) else 0.0,
                fixture.kind == "rgbw",
            ))

    def compute(self, ext: np.ndarray) -> None:
        out = self._base
        for hue_at, hue_low, hue_span, deg_low, deg_span, bright_at, bright_low, bright_span, sat_at, sat, white in self._rows:
            hue_unit = min(1.0, max(0.0, (float(ext[hue_at]) - hue_low) / hue_span))
            value = min(1.0, max(0.0, (float(ext[bright_at]) - bright_low) / bright_span))
            if sat_at is not None:
                sat = min(1.0, max(0.0, float(ext[sat_at])))
            red, green, blue = colorsys.hsv_to_rgb(((deg_low + hue_unit * deg_span) % DEGREES) / DEGREES, sat, value)
            common = min(red, green, blue) if white else 0.0
            ext[out : out + 4] = (red - common, green - common, blue - common, common)
            out += 4
