"""MIDI control changes out: chosen values as CCs on a hardware, virtual or JACK MIDI port.

A :class:`MidiMapping` (the ``[midi]`` settings, see ``docs/guide/midi.md`` and the ``midi`` preset) maps each chosen value
(an emotion or a mid-level feature, 0-1 sent units) to a MIDI channel and controller number. A value is
scaled to 0-127, or to 0-16383 for a 14-bit pair (MSB on controller ``cc`` 0-31, LSB on ``cc + 32``,
MSB first, as the MIDI 1.0 specification orders them). :class:`CcEncoder` sends a controller only when
its value changed, and each controller at most ``max_rate_hz`` times a second (a change held back goes
out with a later update).

:class:`MidiSink` opens the port with python-rtmidi on the platform's MIDI system (CoreMIDI on macOS,
WinMM on Windows, the ALSA sequencer or JACK on Linux): ``api`` (``--midi-api``) chooses, the default takes
the first that works in python-rtmidi's order for the platform. ALSA and JACK are tested on Linux (CI);
CoreMIDI and WinMM are python-rtmidi's own backends, expected to work but not tested here. The messages
are built with mido. A named port that disappears mid-show is
logged and looked for again every ``PORT_CHECK_S`` on the sink's own thread, so analysis never waits
for it; when it is back, the current values are sent again. A virtual port is watched the same way:
when it is no longer listed (the JACK server restarted, taking the port with it) it is logged and
opened again, under the same name, once the MIDI system is back. Updates that cannot go meanwhile are
counted as dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mer_live.core import labels
from mer_live.core.rate_limit import RateLimitedLog
from mer_live.core.reading import Reading
from mer_live.core.exit_codes import UsageError
from mer_live.core.fields import ConfigError, setting
from mer_live.outputs.base import DELAY_RANGE_MS, LOG_INTERVAL_S, MS_PER_S, SinkContext
from mer_live.outputs.registry import OutputSpec

LOG = logging.getLogger("mer_live")

APIS = {  # --midi-api names -> python-rtmidi's API constants
    "alsa": "API_LINUX_ALSA",
    "jack": "API_UNIX_JACK",
    "coremidi": "API_MACOSX_CORE",
    "winmm": "API_WINDOWS_MM",
}
MIDI_APIS = tuple(APIS)
MIDI_MAX_RATE_RANGE_HZ = (0.1, 1000.0)


def _midi_api_ok(value: str) -> None:
    if value not in ("", *MIDI_APIS):
        raise ValueError(f"{value!r}: use {' or '.join(MIDI_APIS)}, or \"\" for the first that works")


@dataclass(frozen=True)
class MidiSettings:
    """``[midi]``: MIDI control changes out (:mod:`mer_live.outputs.midi`, ``docs/MIDI.md``)."""

    enabled: bool = setting(False, help="no MIDI output", negative_flag="--no-midi")
    port: str = setting(
        "", help="send MIDI control changes to this output port (name or part of it, see -l); turns MIDI on",
        flag="--midi", metavar="PORT", default_help="none", enables=True,
    )
    virtual: str = setting(
        "", help="open a virtual MIDI output port NAME for other programs to connect to; turns MIDI on",
        flag="--midi-virtual", metavar="NAME", default_help="none", enables=True,
    )
    api: str = setting(
        "", help="MIDI system: alsa or jack (Linux), coremidi (macOS), winmm (Windows)", flag="--midi-api", metavar="API",
        default_help="the platform's first that works, in python-rtmidi's order",
        check=_midi_api_ok,
    )
    max_rate_hz: float = setting(20.0, help="most control changes per second, per controller", bounds=MIDI_MAX_RATE_RANGE_HZ)
    cc: tuple[dict, ...] = setting((), help="the mapping: [[midi.cc]] tables (value, channel, cc, high_resolution)", tables=True)
    delay_ms: float = setting(
        0.0, help="delay MIDI by this much (to line it up with video, lights or another output)", flag="--midi-delay",
        metavar="MS", bounds=DELAY_RANGE_MS,
    )


VALUE_NAMES: tuple[str, ...] = labels.EMOTIONS + labels.MID_LEVELS
MIDI_CHANNELS = (1, 16)  # as musicians number them; the status byte carries channel - 1
CC_NUMBERS = (0, 119)  # 120-127 are channel mode messages
CC_14BIT_MSB = (0, 31)  # a 14-bit pair: MSB on 0-31, LSB on MSB + 32
LSB_OFFSET = 32
MAX_7BIT = 127
MAX_14BIT = 16383
BITS_PER_BYTE = 7
DEFAULT_MAX_RATE_HZ = MidiSettings().max_rate_hz
MAX_RATE_RANGE_HZ = MIDI_MAX_RATE_RANGE_HZ
PORT_CHECK_S = 2.0
CLOSE_DRAIN_S = 0.1  # rtmidi's JACK output hands messages over in the next process cycle: let it run
CLIENT_NAME = "mer-live"
OUTPUT_PORT_NAME = "out"
MAPPING_KEYS = {"max_rate_hz", "cc"}
CONTROL_KEYS = {"value", "channel", "cc", "high_resolution"}


# Clients whose JACK server went away: never deleted, because rtmidi's delete of such a client crashes
# in libjack (a segmentation fault, seen with jackd2 1.9); they are only kept from the garbage collector.
_DEAD_CLIENTS: list = []


class MidiError(ValueError):
    """A bad mapping, a missing port, or no usable MIDI system; one line naming the fix."""


@dataclass(frozen=True)
class CcControl:
    """One value -> one controller (``cc``, or the pair ``cc``/``cc + 32`` when ``high_resolution``)."""

    value: str
    channel: int
    cc: int
    high_resolution: bool = False

    @property
    def label(self) -> str:
        pair = f"/{self.cc + LSB_OFFSET} (14-bit)" if self.high_resolution else ""
        return f"{self.value} -> ch {self.channel} CC {self.cc}{pair}"


@dataclass(frozen=True)
class MidiMapping:
    """What is sent: ``controls`` in sending order, each controller at most ``max_rate_hz`` per second."""

    controls: tuple[CcControl, ...]
    max_rate_hz: float = DEFAULT_MAX_RATE_HZ


EMOTION_FIRST_CC = 20  # 20-31 and 102-119 are the controllers MIDI leaves undefined
MID_FIRST_CC = 102
DEFAULT_MAPPING = MidiMapping(
    controls=tuple(CcControl(value=name, channel=1, cc=EMOTION_FIRST_CC + i) for i, name in enumerate(labels.EMOTIONS))
    + tuple(CcControl(value=name, channel=1, cc=MID_FIRST_CC + i) for i, name in enumerate(labels.MID_LEVELS))
)


def _check_int(*, value: Any, bounds: tuple[int, int], what: str) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MidiError(f"{what} = {value!r}; use a whole number from {low} to {high}")
    return value


def parse_mapping(*, data: dict[str, Any], source: str) -> MidiMapping:
    """A mapping from the ``[midi]`` table of a TOML file (``max_rate_hz`` and ``[[midi.cc]]`` entries).

    Raises :class:`MidiError` naming the bad key. Two controls may not share a controller (a 14-bit
    pair takes two)."""
    unknown = set(data) - MAPPING_KEYS
    if unknown:
        raise MidiError(f"{source}: unknown key midi.{sorted(unknown)[0]} (known: {', '.join(sorted(MAPPING_KEYS))})")
    rate = data.get("max_rate_hz", DEFAULT_MAX_RATE_HZ)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (
        math.isfinite(rate) and MAX_RATE_RANGE_HZ[0] <= rate <= MAX_RATE_RANGE_HZ[1]
    ):
        raise MidiError(f"{source}: midi.max_rate_hz = {rate!r}; use {MAX_RATE_RANGE_HZ[0]} to {MAX_RATE_RANGE_HZ[1]}")
    entries = data.get("cc", [])
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise MidiError(f"{source}: give at least one [[midi.cc]] table (value, channel, cc)")
    controls, used = [], {}
    for number, entry in enumerate(entries, start=1):
        where = f"{source}: [[midi.cc]] #{number}"
        unknown = set(entry) - CONTROL_KEYS
        if unknown:
            raise MidiError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(CONTROL_KEYS))})")
        missing = {"value", "channel", "cc"} - set(entry)
        if missing:
            raise MidiError(f"{where}: missing {', '.join(sorted(missing))}")
        if entry["value"] not in VALUE_NAMES:
            raise MidiError(f"{where}: value {entry['value']!r} is not one of {', '.join(VALUE_NAMES)}")
        high = entry.get("high_resolution", False)
        if not isinstance(high, bool):
            raise MidiError(f"{where}: high_resolution must be true or false")
        channel = _check_int(value=entry["channel"], bounds=MIDI_CHANNELS, what=f"{where}: channel")
        cc = _check_int(value=entry["cc"], bounds=CC_14BIT_MSB if high else CC_NUMBERS, what=f"{where}: cc")
        control = CcControl(value=entry["value"], channel=channel, cc=cc, high_resolution=high)
        for controller in (cc, cc + LSB_OFFSET) if high else (cc,):
            if (channel, controller) in used:
                raise MidiError(f"{where}: channel {channel} CC {controller} is already used by {used[channel, controller]}")
            used[channel, controller] = control.value
        controls.append(control)
    return MidiMapping(controls=tuple(controls), max_rate_hz=float(rate))


def scale(*, value: float, high_resolution: bool) -> int:
    """A 0-1 value as a controller value: 0-127, or 0-16383 for a 14-bit pair (clipped, rounded)."""
    top = MAX_14BIT if high_resolution else MAX_7BIT
    if not math.isfinite(value):
        return 0
    return int(round(min(1.0, max(0.0, float(value))) * top))


def reading_values(*, reading: Reading) -> dict[str, float] | None:
    """The sendable values of ``reading`` by name, or None (a heartbeat, muted, or no values yet)."""
    if not reading.is_update or reading.muted or not reading.has_values:
        return None
    values = dict(zip(labels.EMOTIONS, (float(v) for v in reading.emotion)))
    values.update(zip(labels.MID_LEVELS, (float(v) for v in reading.mid)))
    return values


class CcEncoder:
    """Values -> the control-change messages to send now: only what changed, each controller at most
    ``mapping.max_rate_hz`` times a second. Messages are ``(status, controller, value)`` byte triples."""

    def __init__(self, *, mapping: MidiMapping) -> None:
        import mido

        self._mido = mido
        self.mapping = mapping
        self._interval = 1.0 / mapping.max_rate_hz
        self.reset()

    def reset(self) -> None:
        """Forget what was sent: the next call sends every controller."""
        count = len(self.mapping.controls)
        self._sent: list[int | None] = [None] * count
        self._sent_at: list[float] = [-math.inf] * count

    def _message(self, *, control: CcControl, controller: int, value: int) -> tuple[int, ...]:
        message = self._mido.Message("control_change", channel=control.channel - 1, control=controller, value=value)
        return tuple(message.bytes())

    def process(self, *, values: dict[str, float], now: float) -> list[tuple[int, ...]]:
        """The messages for ``values`` (by name, 0-1) at monotonic time ``now`` (seconds)."""
        out: list[tuple[int, ...]] = []
        for index, control in enumerate(self.mapping.controls):
            level = scale(value=values[control.value], high_resolution=control.high_resolution)
            previous = self._sent[index]
            if level == previous or now - self._sent_at[index] < self._interval:
                continue
            if control.high_resolution:
                msb, lsb = level >> BITS_PER_BYTE, level & MAX_7BIT
                old_msb = None if previous is None else previous >> BITS_PER_BYTE
                if msb != old_msb:  # a receiver clears the LSB on a new MSB, so the LSB always follows
                    out.append(self._message(control=control, controller=control.cc, value=msb))
                out.append(self._message(control=control, controller=control.cc + LSB_OFFSET, value=lsb))
            else:
                out.append(self._message(control=control, controller=control.cc, value=level))
            self._sent[index], self._sent_at[index] = level, now
        return out


# ------------------------------------------------------------------------------------------- ports


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what ALSA and libjack print on fd 2 while probing (startup and ``-l`` only: not thread-safe)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _rtmidi():
    try:
        import rtmidi
    except ImportError as error:
        raise MidiError("MIDI needs mido and python-rtmidi: pip install 'mer-live[midi]'") from error
    return rtmidi


def _api_names(*, api: str) -> list[str]:
    """The ``--midi-api`` names to try, in order: ``api`` alone, or for ``""`` every API compiled into
    python-rtmidi, in its own order of preference for this platform (``get_compiled_api``: CoreMIDI on
    macOS, WinMM on Windows, ALSA then JACK on Linux), so the platform's backend comes first."""
    rtmidi = _rtmidi()
    if api and api not in APIS:
        raise MidiError(f"--midi-api {api!r}: use one of {', '.join(APIS)}")
    compiled = list(rtmidi.get_compiled_api())
    by_constant = {getattr(rtmidi, constant): name for name, constant in APIS.items() if hasattr(rtmidi, constant)}
    if api:
        return [api] if getattr(rtmidi, APIS[api], None) in compiled else []
    return [by_constant[constant] for constant in compiled if constant in by_constant]


def _open_client(*, api: str, name: str = CLIENT_NAME):
    """An rtmidi output client on ``api`` (``""``: the first API that works) -> ``(client, api name)``."""
    rtmidi = _rtmidi()
    reasons = []
    for candidate in _api_names(api=api):
        try:
            with _native_stderr_silenced():
                return rtmidi.MidiOut(rtapi=getattr(rtmidi, APIS[candidate]), name=name), candidate
        except rtmidi.RtMidiError as error:
            reasons.append(f"{candidate}: {error}")
    raise MidiError(
        f"no MIDI system to open ({'; '.join(reasons) or 'none compiled into python-rtmidi'}); "
        "on Linux start a JACK server and pass --midi-api jack, or load the ALSA sequencer (snd-seq)"
    )


def list_outputs() -> str:
    """The MIDI output ports of each MIDI system, for ``mer-live -l``."""
    try:
        names = _api_names(api="")
    except MidiError as error:
        return f"MIDI outputs: {error}"
    lines = []
    for api in names:
        try:
            client, _ = _open_client(api=api, name=f"{CLIENT_NAME}-list")
        except MidiError:
            lines.append(f"MIDI outputs ({api}): not available")
            continue
        ports = client.get_ports()
        client.delete()
        lines.append(f"MIDI outputs ({api}):" + "".join(f"\n  {name}" for name in ports) if ports else f"MIDI outputs ({api}): none")
    return "\n".join(lines)


def match_port(*, spec: str, ports: list[str]) -> int | None:
    """The index of the port named ``spec`` (exact, else a unique case-insensitive substring), or None."""
    if spec in ports:
        return ports.index(spec)
    hits = [index for index, name in enumerate(ports) if spec.lower() in name.lower()]
    return hits[0] if len(hits) == 1 else None


class MidiSink:
    """Sends each update's values as control changes to the port ``port`` (a name or a substring of
    one) or, with ``virtual``, to a new virtual output port of that name that other programs connect to.

    Raises :class:`MidiError` when the port does not exist (naming the ones that do) or no MIDI system
    can be opened. A named port that vanishes later is logged; a watcher thread looks for it every
    ``check_s`` and reopens it, and the values are then sent again in full.
    """

    def __init__(
        self,
        *,
        mapping: MidiMapping = DEFAULT_MAPPING,
        port: str = "",
        virtual: str = "",
        api: str = "",
        check_s: float = PORT_CHECK_S,
        clock=time.monotonic,
    ) -> None:
        if bool(port) == bool(virtual):
            raise MidiError("give a MIDI output port (--midi PORT) or a virtual port name (--midi-virtual NAME)")
        self._clock = clock
        self._encoder = CcEncoder(mapping=mapping)
        self._log = RateLimitedLog(logger=LOG, window_s=LOG_INTERVAL_S)
        self._spec = port
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._resend = False
        self._latest: dict[str, float] | None = None
        self.messages_sent = 0
        self.delivered = 0  # updates, as the output stage counts them (mer_live.outputs.base)
        self.dropped = 0  # updates not sent: the port was gone, or a send failed
        self.last_error = ""
        self._lister, self.api = _open_client(api=api, name=f"{CLIENT_NAME}-watch" if port else CLIENT_NAME)
        if virtual:
            self.name = f"MIDI virtual {CLIENT_NAME}:{virtual} ({self.api})"
            self._client = self._lister
            self._lister = None
            try:
                self._client.open_virtual_port(virtual)
            except _rtmidi().RtMidiError as error:
                self._client.delete()
                raise MidiError(f"--midi-virtual {virtual!r}: cannot open a virtual port on {self.api} ({error})") from error
            self._virtual = re.compile(rf"^{re.escape(CLIENT_NAME)}(-\d+)?:{re.escape(virtual)}(\s|$)")
            self._virtual_name = virtual
            self._check_s = float(check_s)
            self._watcher = threading.Thread(target=self._watch_virtual, name="mer-live-midi", daemon=True)
            self._watcher.start()
            return
        ports = self._lister.get_ports()
        index = match_port(spec=port, ports=ports)
        if index is None:
            self._lister.delete()
            known = ", ".join(repr(name) for name in ports) or "none"
            raise MidiError(f"--midi {port!r}: no such MIDI output on {self.api} (available: {known}); see mer-live -l")
        self.name = f"MIDI {ports[index]} ({self.api})"
        self._client = self._open(index=index)
        if self._client is None:
            self._lister.delete()
            raise MidiError(f"--midi {port!r}: cannot open {ports[index]!r} on {self.api}: {self.last_error}")
        self._check_s = float(check_s)
        self._watcher = threading.Thread(target=self._watch, name="mer-live-midi", daemon=True)
        self._watcher.start()

    def _open(self, *, index: int):
        rtmidi = _rtmidi()
        try:
            client = rtmidi.MidiOut(rtapi=getattr(rtmidi, APIS[self.api]), name=CLIENT_NAME)
            client.open_port(index, name=OUTPUT_PORT_NAME)
        except rtmidi.RtMidiError as error:
            self.last_error = str(error)
            return None
        return client

    def _watch(self) -> None:
        """Watcher thread: notice the port going and coming back (never blocks :meth:`process`)."""
        while not self._closed.wait(self._check_s):
            try:
                ports = self._lister.get_ports()
            except Exception as error:  # noqa: BLE001 - e.g. the MIDI system itself went away
                ports = []
                self._log.log(key="list", message=f"{self.name}: cannot list MIDI ports ({error}); retrying")
            index = match_port(spec=self._spec, ports=ports)
            if index is None and self._client is not None:
                with self._lock:
                    gone, self._client = self._client, None
                gone.delete()
                LOG.warning("%s has gone; looking for it every %g s", self.name, self._check_s)
            elif index is not None and self._client is None:
                client = self._open(index=index)
                if client is not None:
                    with self._lock:
                        self._client, self._resend = client, True
                    LOG.warning("%s is back; sending the current values again", self.name)

    def _virtual_listed(self) -> bool:
        """Whether the virtual port is listed by the MIDI system (False when the system is not running)."""
        rtmidi = _rtmidi()
        try:
            probe = rtmidi.MidiIn(rtapi=getattr(rtmidi, APIS[self.api]), name=f"{CLIENT_NAME}-watch")
        except Exception as error:  # noqa: BLE001 - rtmidi's errors: the MIDI system is not (yet) back
            self.last_error = f"the MIDI system is not running ({error})"
            return False
        try:
            return any(self._virtual.match(name) for name in probe.get_ports())
        finally:
            probe.delete()

    def _watch_virtual(self) -> None:
        """Watcher thread of a virtual port: notice it going (the JACK server restarted) and open it again."""
        while not self._closed.wait(self._check_s):
            if self._virtual_listed():
                continue
            if self._client is not None:
                with self._lock:
                    gone, self._client = self._client, None
                _DEAD_CLIENTS.append(gone)
                self.last_error = "the virtual port has gone"
                LOG.warning("%s has gone (the MIDI system stopped or restarted); opening it again every %g s",
                            self.name, self._check_s)
            rtmidi = _rtmidi()
            try:
                client = rtmidi.MidiOut(rtapi=getattr(rtmidi, APIS[self.api]), name=CLIENT_NAME)
                client.open_virtual_port(self._virtual_name)
            except Exception as error:  # noqa: BLE001 - not back yet
                self.last_error = f"cannot open the virtual port again ({error})"
                continue
            with self._lock:
                self._client, self._resend = client, True
            LOG.warning("%s is back; sending the current values again (receivers must connect to it again)", self.name)

    def process(self, *, reading: Reading) -> None:
        values = reading_values(reading=reading)
        if values is not None:
            self._latest = values
            if self._send(values=values, now=self._clock()):
                self.delivered += 1
            else:
                self.dropped += 1

    def _send(self, *, values: dict[str, float], now: float) -> bool:
        """Send what changed; False when the port is gone or a send failed."""
        with self._lock:
            client = self._client
            if client is None:
                return False
            if self._resend:
                self._resend = False
                self._encoder.reset()
            for message in self._encoder.process(values=values, now=now):
                try:
                    client.send_message(list(message))
                    self.messages_sent += 1
                except Exception as error:  # noqa: BLE001 - rtmidi's errors; no output may stop the daemon
                    self.last_error = str(error)
                    self._log.log(key="send", message=f"{self.name}: send failed ({error}); carrying on")
                    return False
            return True

    def reset(self) -> None:
        """Send every value again with the next update."""
        with self._lock:
            self._resend = True

    def close(self) -> None:
        """Send the changes the rate limit still holds back, then close the port."""
        if self._latest is not None:
            self._send(values=self._latest, now=math.inf)
        self._closed.set()
        if self._watcher is not None:
            self._watcher.join(self._check_s + 1.0)
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            if self.messages_sent:
                time.sleep(CLOSE_DRAIN_S)
            client.close_port()
            client.delete()
        if self._lister is not None:
            self._lister.delete()
            self._lister = None


def mapping_from_settings(*, midi: MidiSettings) -> MidiMapping:
    """The mapping of the ``[midi]`` settings: its ``[[midi.cc]]`` tables, or the default mapping when there
    are none, at its ``max_rate_hz``. Raises :class:`MidiError` naming the bad table."""
    if not midi.cc:
        return MidiMapping(controls=DEFAULT_MAPPING.controls, max_rate_hz=float(midi.max_rate_hz))
    return parse_mapping(data={"cc": list(midi.cc), "max_rate_hz": midi.max_rate_hz}, source="config")


def make_sinks(settings: MidiSettings, *, context: SinkContext) -> list[MidiSink]:
    if not settings.enabled:
        return []
    try:
        sink = MidiSink(mapping=mapping_from_settings(midi=settings), port=settings.port, virtual=settings.virtual, api=settings.api)
    except MidiError as error:
        raise UsageError(str(error)) from error
    sink.delay_s = settings.delay_ms / MS_PER_S  # the lane holds each reading back this long
    return [sink]


def describe(settings: MidiSettings) -> list[str]:
    return [f"MIDI {settings.port or 'virtual port ' + settings.virtual}"] if settings.enabled else []


def resolve(settings: MidiSettings, given: dict[str, Any]) -> MidiSettings:
    """One MIDI port: a port named on the command line replaces the file's (CLI > TOML), whichever kind."""
    if "port" in given and "virtual" in given:
        raise UsageError("--midi and --midi-virtual contradict each other: give one of them")
    if "port" in given or "virtual" in given:
        return dataclasses.replace(settings, port=given.get("port", ""), virtual=given.get("virtual", ""))
    if settings.enabled and settings.port and settings.virtual:
        raise UsageError("midi.port and midi.virtual are both set: keep one of them, or give --midi or --midi-virtual")
    return settings


def check(settings: MidiSettings) -> None:
    if settings.enabled and not (settings.port or settings.virtual):
        raise ConfigError("midi.enabled is true but there is no port: give --midi PORT or --midi-virtual NAME")


OUTPUT = OutputSpec(name="midi", settings=MidiSettings, make=make_sinks, describe=describe, check=check, order=30, resolve=resolve)
