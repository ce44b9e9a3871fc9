"""Cue triggers: "tension above 0.7 for 2 s fires, below 0.5 releases", sending OSC, a MIDI note or a DMX value.

A trigger file (``mer_live/outputs/dmx/cues/*.toml``, docs/guide/lighting.md) has ``[[trigger]]``
tables and optional ``[osc]`` (``target``: the default HOST:PORT) and ``[midi]`` (``port``, ``api``) tables.
Each trigger follows one value (:mod:`.signals`) with two thresholds: when ``on`` >= ``off`` it fires after
the value has stayed above ``on`` for ``hold_s`` and releases when it falls below ``off``; when ``on`` < ``off``
it fires below ``on`` and releases above ``off`` (for "energy below 0.2 for 5 s"). After a release it
cannot fire again for ``cooldown_s``. On firing it sends, as configured:

* ``osc``: an OSC message to ``osc_target`` (or ``[osc] target``) with ``osc_args``, whose strings may name
  ``{name}``, ``{source}``, ``{value}``, ``{top}`` (the mid-level feature that contributes most to the
  emotion followed: the explanation) and ``{top_value}``; a string that is only ``{value}`` or
  ``{top_value}`` is sent as a float. ``osc_release``: an address sent on release (same arguments);
* ``note``: a MIDI note on (``channel``, ``velocity``), and its note off on release;
* ``dmx = [universe, address, value]``: a DMX slot held at a value while the trigger is active (needs
  the DMX output on).

Triggers are evaluated on every update, on the sink's own lane thread, in stream time (so ``--fast``
files trigger as they would live). Sends never block: OSC goes out on a non-blocking socket to a
numeric address; a MIDI or OSC failure is logged (rate-limited) and counted.
"""

from __future__ import annotations

import collections
import logging
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mer_live.core import labels
from mer_live.core.rate_limit import RateLimitedLog
from mer_live.core.reading import Reading
from mer_live.core import osc
from mer_live.outputs.dmx import signals
from mer_live.outputs.dmx.channel_map import MapError, _Lines, _number, integer, read_toml, tables

LOG = logging.getLogger("mer_live")

TRIGGER_KEYS = ("name", "source", "on", "off", "hold_s", "cooldown_s", "osc", "osc_args", "osc_release", "osc_release_args", "osc_target",
                "note", "channel", "velocity", "dmx")
TOP_KEYS = ("name", "description", "osc", "midi", "trigger", "follow")
FOLLOW_KEYS = ("source", "osc", "osc_target", "range", "min_change")
DEFAULT_MIN_CHANGE = 1.0 / 255.0  # a follower sends when its 0-1 value moved by one 8-bit step
MAX_TIME_S = 3600.0
PLACEHOLDERS = ("name", "source", "value", "top", "top_value")
FLOAT_PLACEHOLDERS = ("{value}", "{top_value}")
LOG_INTERVAL_S = 10.0
HISTORY = 1000  # the last fires and releases kept (for the tests and a look in a debugger)
MIDI_NOTE_ON = 0x90
MIDI_NOTE_OFF = 0x80


class TriggerError(MapError):
    """A bad trigger file: ``FILE:LINE: reason`` on one line."""


@dataclass(frozen=True)
class Trigger:
    name: str
    source: str
    on: float
    off: float
    hold_s: float = 0.0
    cooldown_s: float = 0.0
    osc: str = ""
    osc_args: tuple[Any, ...] = ()
    osc_release: str = ""
    osc_release_args: tuple[Any, ...] | None = None  # None: the same as osc_args
    osc_target: tuple[str, int] | None = None
    note: int | None = None
    channel: int = 1
    velocity: int = 100
    dmx: tuple[int, int, int] | None = None

    @property
    def above(self) -> bool:
        return self.on >= self.off


@dataclass(frozen=True)
class Follow:
    """A value sent continuously to one OSC address as a 0-1 float (an Eos submaster or fader, a QLC+ slider)."""

    source: str
    osc: str
    osc_target: tuple[str, int]
    range: tuple[float, float]
    min_change: float = DEFAULT_MIN_CHANGE


@dataclass(frozen=True)
class TriggerFile:
    path: str
    triggers: tuple[Trigger, ...]
    follows: tuple[Follow, ...] = ()
    midi_port: str = ""
    midi_api: str = ""

    def describe(self) -> str:
        rows = [f"{len(self.triggers)} trigger(s) from {self.path}"]
        for t in self.triggers:
            rule = f"{t.source} {'>' if t.above else '<'} {t.on:g} for {t.hold_s:g} s, releases {'<' if t.above else '>'} {t.off:g}"
            sends = [s for s in (
                f"OSC {t.osc} to {t.osc_target[0]}:{t.osc_target[1]}" if t.osc else "",
                f"note {t.note} ch {t.channel}" if t.note is not None else "",
                f"DMX {t.dmx[0]}/{t.dmx[1]} = {t.dmx[2]}" if t.dmx else "",
            ) if s]
            rows.append(f"  {t.name}: {rule}, cool-down {t.cooldown_s:g} s -> {'; '.join(sends)}")
        for f in self.follows:
            rows.append(f"  follow {f.source} [{f.range[0]:g}, {f.range[1]:g}] -> OSC {f.osc} to {f.osc_target[0]}:{f.osc_target[1]}")
        return "\n".join(rows)


def _host_port(spec: Any, *, fail) -> tuple[str, int]:
    match = re.fullmatch(r"(\d+\.\d+\.\d+\.\d+):(\d+)", spec) if isinstance(spec, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise fail(f"OSC target {spec!r}: give an IPv4 address and port, e.g. \"127.0.0.1:8000\"")
    try:
        socket.inet_aton(match.group(1))
    except OSError as error:
        raise fail(f"OSC target {spec!r}: {match.group(1)} is not an IPv4 address") from error
    return match.group(1), int(match.group(2))


def _arguments(args: Any, *, key: str, fail) -> tuple[Any, ...]:
    if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in args):
        raise fail(f"{key} must be a list of strings and numbers")
    for arg in args:
        if isinstance(arg, str):
            try:
                arg.format(**{p: 0.0 if p in ("value", "top_value") else "x" for p in PLACEHOLDERS})
            except (KeyError, IndexError, ValueError) as error:
                raise fail(f"{key} {arg!r}: unknown placeholder {error}; use {{{'}, {'.join(PLACEHOLDERS)}}}") from error
    return tuple(args)


def parse(text: str, *, path: str = "<triggers>") -> TriggerFile:
    """The checked trigger file in ``text``; raises :class:`TriggerError` (file, line, reason)."""
    data = read_toml(text, path=path, error=TriggerError)
    lines = _Lines(text)

    def failer(table: str, index: int, key: str | None):
        prefix = f"trigger {index + 1}: " if table == "trigger" else ""
        return lambda reason: TriggerError(f"{path}:{lines.line(table, index, key)}: {prefix}{reason}")

    for key in data:
        if key not in TOP_KEYS:
            raise failer("", 0, key)(f"unknown key {key!r} (known: {', '.join(TOP_KEYS)})")
    osc_table = data.get("osc", {})
    midi_table = data.get("midi", {})
    if not isinstance(osc_table, dict) or set(osc_table) - {"target"}:
        raise failer("osc", 0, None)("[osc] takes one key: target = \"HOST:PORT\"")
    if not isinstance(midi_table, dict) or set(midi_table) - {"port", "api"} or not all(isinstance(v, str) for v in midi_table.values()):
        raise failer("midi", 0, None)("[midi] takes port = \"NAME\" and api = \"alsa\" or \"jack\" (strings)")
    default_target = _host_port(osc_table["target"], fail=failer("osc", 0, "target")) if "target" in osc_table else None
    triggers = []
    trigger_tables = tables(data, "trigger", fail=failer("", 0, "trigger"))
    follow_tables = tables(data, "follow", fail=failer("", 0, "follow"))
    if not trigger_tables and not follow_tables:
        raise failer("", 0, None)("nothing to do: add [[trigger]] or [[follow]] tables")
    for index, entries in enumerate(trigger_tables):
        fail = lambda key, index=index: failer("trigger", index, key)  # noqa: E731
        for key in entries:
            if key not in TRIGGER_KEYS:
                raise fail(key)(f"unknown key {key!r} in [[trigger]] (known: {', '.join(TRIGGER_KEYS)})")
        for key in ("source", "on", "off"):
            if key not in entries:
                raise fail(None)(f"{key} is missing (e.g. source = \"emotion.tension\", on = 0.7, off = 0.5)")
        source = entries["source"]
        if not isinstance(source, str) or source not in signals.INDEX:
            raise fail("source")(f"source {source!r} is not a value mer-live sends; use emotion.NAME, mid.NAME, "
                                 "contribution.EMOTION.MID, level or silence")
        values: dict[str, Any] = {"source": source, "name": entries.get("name", f"trigger {index + 1}")}
        if not isinstance(values["name"], str):
            raise fail("name")("name must be a string")
        for key in ("on", "off"):
            if not _number(entries[key]):
                raise fail(key)(f"{key} must be a number, got {entries[key]!r}")
            values[key] = float(entries[key])
        if values["on"] == values["off"]:
            raise fail("off")("on and off are equal: give off below on (fires above) or above on (fires below)")
        for key in ("hold_s", "cooldown_s"):
            if key in entries:
                if not (_number(entries[key]) and 0.0 <= entries[key] <= MAX_TIME_S):
                    raise fail(key)(f"{key} {entries[key]!r} is out of range; use 0 to {MAX_TIME_S:g}")
                values[key] = float(entries[key])
        for key in ("osc", "osc_release"):
            if key in entries:
                if not (isinstance(entries[key], str) and entries[key].startswith("/")):
                    raise fail(key)(f"{key} must be an OSC address starting with '/', got {entries[key]!r}")
                values[key] = entries[key]
        for key in ("osc_args", "osc_release_args"):
            if key in entries:
                values[key] = _arguments(entries[key], key=key, fail=fail(key))
        if "osc_target" in entries:
            values["osc_target"] = _host_port(entries["osc_target"], fail=fail("osc_target"))
        elif values.get("osc") or values.get("osc_release"):
            if default_target is None:
                raise fail("osc")("no OSC target: give osc_target = \"HOST:PORT\" or [osc] target")
            values["osc_target"] = default_target
        if "note" in entries:
            values["note"] = integer(entries["note"], key="note", low=0, high=127, fail=fail("note"))
            if not midi_table.get("port"):
                raise fail("note")("a MIDI note needs [midi] port = \"NAME\"")
        if "channel" in entries:
            values["channel"] = integer(entries["channel"], key="channel", low=1, high=16, fail=fail("channel"))
        if "velocity" in entries:
            values["velocity"] = integer(entries["velocity"], key="velocity", low=1, high=127, fail=fail("velocity"))
        if "dmx" in entries:
            dmx = entries["dmx"]
            if not (isinstance(dmx, list) and len(dmx) == 3):
                raise fail("dmx")("dmx must be [universe, address, value]")
            values["dmx"] = (
                integer(dmx[0], key="dmx universe", low=1, high=64, fail=fail("dmx")),
                integer(dmx[1], key="dmx address", low=1, high=512, fail=fail("dmx")),
                integer(dmx[2], key="dmx value", low=0, high=255, fail=fail("dmx")),
            )
        if not (values.get("osc") or "note" in values or "dmx" in values):
            raise fail(None)("the trigger sends nothing: give osc, note or dmx")
        triggers.append(Trigger(**values))
    follows = []
    for index, entries in enumerate(follow_tables):
        fail = lambda key, index=index: failer("follow", index, key)  # noqa: E731
        for key in entries:
            if key not in FOLLOW_KEYS:
                raise fail(key)(f"unknown key {key!r} in [[follow]] (known: {', '.join(FOLLOW_KEYS)})")
        source = entries.get("source")
        if not isinstance(source, str) or source not in signals.INDEX:
            raise fail("source")(f"source {source!r} is not a value mer-live sends; use emotion.NAME, mid.NAME, "
                                 "contribution.EMOTION.MID, level or silence")
        address = entries.get("osc")
        if not (isinstance(address, str) and address.startswith("/")):
            raise fail("osc")(f"osc must be an OSC address starting with '/', got {address!r}")
        if "osc_target" in entries:
            target = _host_port(entries["osc_target"], fail=fail("osc_target"))
        elif default_target is not None:
            target = default_target
        else:
            raise fail("osc")("no OSC target: give osc_target = \"HOST:PORT\" or [osc] target")
        value_range = signals.default_range(source)
        if "range" in entries:
            low_high = entries["range"]
            if not (isinstance(low_high, list) and len(low_high) == 2 and all(_number(v) for v in low_high) and low_high[0] != low_high[1]):
                raise fail("range")(f"range must be two different numbers [low, high], got {low_high!r}")
            value_range = (float(low_high[0]), float(low_high[1]))
        min_change = entries.get("min_change", DEFAULT_MIN_CHANGE)
        if not (_number(min_change) and 0.0 <= min_change <= 1.0):
            raise fail("min_change")(f"min_change {min_change!r} is out of range; use 0 to 1")
        follows.append(Follow(source=source, osc=address, osc_target=target, range=value_range, min_change=float(min_change)))
    return TriggerFile(path=path, triggers=tuple(triggers), follows=tuple(follows), midi_port=midi_table.get("port", ""),
                       midi_api=midi_table.get("api", ""))


SHIPPED_DIR = Path(__file__).with_name("cues")


def load(spec: str | Path) -> TriggerFile:
    """A trigger file by path, or a shipped one by name (``eos-cues``)."""
    path = Path(spec)
    if not path.exists() and path.suffix != ".toml" and "/" not in str(spec):
        path = SHIPPED_DIR / f"{spec}.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        shipped = ", ".join(sorted(p.stem for p in SHIPPED_DIR.glob("*.toml")))
        raise TriggerError(f"{spec}:0: cannot read the trigger file ({getattr(error, 'strerror', None) or error}); shipped: {shipped}") from error
    return parse(text, path=str(spec))


@dataclass
class _State:
    active: bool = False
    since: float | None = None
    blocked_until: float = float("-inf")
    fired: int = 0


@dataclass
class Firing:
    """What a trigger did, for the log and the tests."""

    name: str
    fired: bool  # False: released
    time_s: float
    value: float
    top: str
    sends: list[str] = field(default_factory=list)


class TriggerSink:
    """The triggers of a :class:`TriggerFile` as a sink (see the module docstring). ``dmx``: the DMX sink
    whose slots ``dmx`` actions hold (None: DMX actions are refused at start)."""

    name = "triggers"

    def __init__(self, *, triggers: TriggerFile, dmx=None) -> None:
        if dmx is None and any(t.dmx for t in triggers.triggers):
            raise TriggerError(f"{triggers.path}:0: a trigger sends a DMX value but the DMX output is off: give --dmx MAP")
        self.triggers = triggers
        self._dmx = dmx
        self._states = [_State() for _ in triggers.triggers]
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._midi = _open_midi(port=triggers.midi_port, api=triggers.midi_api) if triggers.midi_port else None
        self._log = RateLimitedLog(logger=LOG, window_s=LOG_INTERVAL_S)
        self.history: collections.deque[Firing] = collections.deque(maxlen=HISTORY)  # bounded: a show may be long
        self._followed = [None] * len(triggers.follows)
        self.delivered = 0
        self.dropped = 0

    def process(self, *, reading: Reading) -> None:
        if not (reading.is_update and reading.has_values) or reading.muted:  # muted: nothing fires or follows
            return
        values = signals.vector(reading)
        now = reading.stream_time_s
        ok = True
        for trigger, state in zip(self.triggers.triggers, self._states):
            value = float(values[signals.INDEX[trigger.source]])
            beyond_on = value > trigger.on if trigger.above else value < trigger.on
            beyond_off = value < trigger.off if trigger.above else value > trigger.off
            if state.active:
                if beyond_off:
                    state.active = False
                    state.blocked_until = now + trigger.cooldown_s
                    ok &= self._act(trigger, reading=reading, value=value, fired=False)
                continue
            if not beyond_on or now < state.blocked_until:
                state.since = None
                continue
            if state.since is None:
                state.since = now
            if now - state.since >= trigger.hold_s:
                state.active, state.since = True, None
                state.fired += 1
                ok &= self._act(trigger, reading=reading, value=value, fired=True)
        for index, follow in enumerate(self.triggers.follows):
            low, high = follow.range
            unit = min(1.0, max(0.0, (float(values[signals.INDEX[follow.source]]) - low) / (high - low)))
            last = self._followed[index]
            if last is not None and abs(unit - last) < follow.min_change:
                continue
            try:
                self._socket.sendto(osc.message(address=follow.osc, arguments=[unit]), follow.osc_target)
                self._followed[index] = unit
            except OSError as error:
                ok = False
                self._log.log(key=f"follow {follow.osc}", message=f"follow {follow.osc}: OSC send failed ({error}); carrying on")
        if ok:
            self.delivered += 1
        else:
            self.dropped += 1

    def _act(self, trigger: Trigger, *, reading: Reading, value: float, fired: bool) -> bool:
        top, top_value = _explain(trigger.source, reading=reading)
        firing = Firing(name=trigger.name, fired=fired, time_s=reading.stream_time_s, value=value, top=top)
        ok = True
        address = trigger.osc if fired else trigger.osc_release
        if address:
            fields = {"name": trigger.name, "source": trigger.source, "value": value, "top": top, "top_value": top_value}
            template = trigger.osc_args if fired or trigger.osc_release_args is None else trigger.osc_release_args
            args = [_argument(a, fields=fields) for a in template]
            try:
                self._socket.sendto(osc.message(address=address, arguments=args), trigger.osc_target)
                firing.sends.append(f"OSC {address} {args}")
            except OSError as error:
                ok = False
                self._log.log(key=f"osc {trigger.name}", message=f"trigger {trigger.name}: OSC send failed ({error}); carrying on")
        if trigger.note is not None and self._midi is not None:
            status = (MIDI_NOTE_ON if fired else MIDI_NOTE_OFF) | (trigger.channel - 1)
            try:
                self._midi.send_message([status, trigger.note, trigger.velocity if fired else 0])
                firing.sends.append(f"note {'on' if fired else 'off'} {trigger.note}")
            except Exception as error:  # noqa: BLE001 - rtmidi's errors; no trigger may stop the daemon
                ok = False
                self._log.log(key=f"midi {trigger.name}", message=f"trigger {trigger.name}: MIDI send failed ({error}); carrying on")
        if trigger.dmx is not None:
            universe, slot, level = trigger.dmx
            self._dmx.set_override(universe=universe, address=slot, value=level if fired else None)
            firing.sends.append(f"DMX {universe}/{slot} = {level if fired else 'released'}")
        LOG.info("trigger %s %s at %.1f s (%s %.2f, most from %s): %s", trigger.name, "fired" if fired else "released",
                 reading.stream_time_s, trigger.source, value, top or "-", "; ".join(firing.sends) or "nothing sent")
        self.history.append(firing)
        return ok

    def close(self) -> None:
        for trigger, state in zip(self.triggers.triggers, self._states):
            if state.active and trigger.note is not None and self._midi is not None:
                try:
                    self._midi.send_message([MIDI_NOTE_OFF | (trigger.channel - 1), trigger.note, 0])
                except Exception:  # noqa: BLE001, S110 - closing: nothing else to do
                    pass
        self._socket.close()
        if self._midi is not None:
            self._midi.close_port()


def _explain(source: str, *, reading: Reading) -> tuple[str, float]:
    """The explanation a trigger carries: for an emotion, the mid-level feature contributing most."""
    kind, _, rest = source.partition(".")
    if kind == "emotion":
        return signals.top_contribution(reading, emotion=rest)
    if kind == "contribution":
        emotion, _, mid = rest.partition(".")
        return mid, float(reading.contributions[labels.EMOTIONS.index(emotion)][labels.MID_LEVELS.index(mid)])
    if kind == "mid":
        return rest, float(reading.mid[labels.MID_LEVELS.index(rest)])
    return "", 0.0


def _argument(arg: Any, *, fields: dict[str, Any]) -> Any:
    if isinstance(arg, str):
        if arg in FLOAT_PLACEHOLDERS:
            return float(fields[arg[1:-1]])
        return arg.format(**fields)
    return float(arg) if isinstance(arg, float) else int(arg)


def _open_midi(*, port: str, api: str):
    """An rtmidi output connected to the first port whose name contains ``port``."""
    try:
        import rtmidi
    except ImportError as error:
        raise TriggerError("MIDI triggers need python-rtmidi: pip install 'mer-live[midi]'") from error
    apis = {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK}
    try:
        client = rtmidi.MidiOut(rtapi=apis[api]) if api else rtmidi.MidiOut()
    except (rtmidi.RtMidiError, KeyError) as error:
        raise TriggerError(f"MIDI triggers: cannot open MIDI ({api or 'default'}): {error}") from error
    names = client.get_ports()
    for index, name in enumerate(names):
        if port in name:
            client.open_port(index, "mer-live triggers")
            return client
    raise TriggerError(f"MIDI triggers: no output port matching {port!r}; ports: {', '.join(names) or 'none'}")
