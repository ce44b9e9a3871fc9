"""The daemon's settings as types: one frozen dataclass per TOML section, and :class:`Settings` holding them.

A leaf module (standard library only). The field names and defaults are the single source of truth:
``configs/default.toml`` lists exactly them (a test checks it), :mod:`mer_live.config.options` builds the command
line's options and their help from them, and the control port's ``/mer/query`` keys are field names.
Every limit lives in a field's metadata (:func:`setting`), and one checker (:func:`check_value`) applies it
for the TOML file, the command line, the control port and the worker alike.

Adding a setting is one field: ``name: type = setting(default, help=..., flag="--name")`` in its section
(and a line in ``configs/default.toml``). A new section is a new frozen dataclass plus a field of
:class:`Settings`. ``bounds``, ``choices`` or ``check`` give its limits; ``flag`` puts it on the command line.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from mer_live.core.addresses import check_prefix, parse_host_port, parse_host_port_or_zero, parse_networks

SMOOTHING_RANGE_S = (0.0, 60.0)
FOLLOW_RANGE = (0.0, 10000.0)  # analysis.follow: 1/s per (0-1 unit per second) of mid-level speed
STILL_SPEED_RANGE = (0.0, 10.0)  # analysis.still_speed: 0-1 units per second
CHANGE_RANGE = (0.0, 1.0)  # analysis.change: 0-1 units of an emotion
RATE_RANGE_HZ = (0.5, 30.0)
SILENCE_RANGE_DBFS = (-120.0, 0.0)
THREADS_RANGE = (1, 64)
CHANNEL_MIX = -1  # input.channel: mix the first inputs to mono
SAMPLERATE_RANGE_HZ = (8000, 384000)  # capture rates and file rates accepted
MAX_DURATION_S = 1e7  # --duration: about 115 days (longer overflows the frame arithmetic)
DEFAULT_PREFIX = "/mer"
OSC_FORMAT_BUNDLE = "bundle"
OSC_FORMAT_MESSAGES = "messages"
OSC_FORMATS = (OSC_FORMAT_BUNDLE, OSC_FORMAT_MESSAGES)


ONLY_WHEN_ENABLED = (("control", "listen"),)  # checked only while that output is on


class ConfigError(ValueError):
    """A bad setting; the one-line message names the key and says what is expected."""


def setting(
    default: Any,
    *,
    help: str,  # noqa: A002 - argparse's name for it
    flag: str | None = None,
    short: str | None = None,
    metavar: str | None = None,
    default_help: str | None = None,
    bounds: tuple[float, float] | None = None,
    hint: str | None = None,
    choices: tuple[str, ...] | None = None,
    check: Callable[[Any], object] | None = None,
    append: bool = False,
    negative_flag: str | None = None,
    enables: bool = False,
    tables: bool = False,
) -> Any:
    """A settings field with its default and its metadata.

    ``help``: one line for ``--help``; ``default_help`` replaces the default shown there. ``flag``/``short``:
    the command-line option (none: TOML only); ``metavar``: its argument's name. ``bounds``: the closed range
    (``hint`` replaces "use LOW to HIGH" in the error); ``choices``: the allowed strings; ``check``: raises
    ValueError for a bad value (given each item of a list). ``append``: a repeatable option building a list.
    ``negative_flag``: for a boolean ``enabled``, the option that turns it off; ``enables``: giving this
    field's option on the command line turns its section's ``enabled`` on. ``tables``: a TOML array of tables
    (``[[section.key]]``, TOML only), checked by the part of mer-live that uses it."""
    metadata = {
        "help": help, "flag": flag, "short": short, "metavar": metavar, "default_help": default_help,
        "bounds": bounds, "hint": hint, "choices": choices, "check": check, "append": append,
        "negative_flag": negative_flag, "enables": enables, "tables": tables,
    }
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _samplerate_ok(value: int) -> None:
    low, high = SAMPLERATE_RANGE_HZ
    if value != 0 and not low <= value <= high:
        raise ValueError(f"{value} Hz; use 0 (the device's own rate) or {low} to {high} Hz")


@dataclass(frozen=True)
class InputSettings:
    """``[input]``: where the audio comes from."""

    device: str = setting(
        "", help="input device: numeric id or name substring", flag="--device", short="-d", metavar="DEVICE",
        default_help="system default",
    )
    channel: int = setting(
        CHANNEL_MIX, help="take input channel K (0-based)", flag="--channel", metavar="K", default_help="mono mix",
        bounds=(CHANNEL_MIX, math.inf), hint="use a 0-based channel number, or -1 for a mono mix",
    )
    samplerate: int = setting(
        0, help="capture rate, 8000 to 384000", flag="--samplerate", metavar="HZ", default_help="the device's own",
        check=_samplerate_ok,
    )
    file: str = setting("", help="analyse an audio file, paced in real time", flag="--input", metavar="FILE", default_help="none")
    fast: bool = setting(False, help="with --input/--demo: run as fast as possible", flag="--fast")
    demo: bool = setting(False, help="play the built-in synthesised demo piece", flag="--demo")
    duration: float = setting(
        0.0, help="stop after S seconds of audio; 0 = no limit", flag="--duration", metavar="S",
        bounds=(0.0, MAX_DURATION_S), hint=f"use seconds from 0 (no limit) to {MAX_DURATION_S:.0f}",
    )


@dataclass(frozen=True)
class AnalysisSettings:
    """``[analysis]``: the model and the smoothing; ``rate``, ``smoothing``, ``follow``, ``still_speed`` and ``change`` change live on the control port."""

    rate: float = setting(4.0, help="updates per second", flag="--rate", metavar="HZ", bounds=RATE_RANGE_HZ)
    smoothing: float = setting(
        32.0, help="smoothing in seconds while the music holds still: the longest mean (with --change), or the "
        "time constant of a moving average; 0 = off", flag="--smoothing", metavar="S",
        bounds=SMOOTHING_RANGE_S,
    )
    follow: float = setting(
        0.0, help="how fast the smoothing lets go when the music changes: 1/time constant rises by K per unit/s of "
        "mid-level speed above --still-speed; 0 = plain exponential smoothing", flag="--follow", metavar="K",
        bounds=FOLLOW_RANGE,
    )
    still_speed: float = setting(
        0.08, help="mid-level speed (0-1 units per second, RMS of the 7) below which the music counts as holding "
        "still and --follow does nothing (inert with --follow 0)", flag="--still-speed", metavar="U", bounds=STILL_SPEED_RANGE,
    )
    change: float = setting(
        0.2, help="change points: when the recent audio would move some emotion by more than U (0-1 units) from "
        "the smoothed value, the smoothing starts again from the new level; between change points the output is "
        "the mean since the last one, over at most --smoothing seconds; 0 = off", flag="--change", metavar="U",
        bounds=CHANGE_RANGE,
    )
    silence_dbfs: float = setting(
        -60.0, help="silence gate level", flag="--silence-db", metavar="DBFS", bounds=SILENCE_RANGE_DBFS
    )
    threads: int = setting(1, help="ONNX Runtime threads", flag="--threads", metavar="N", bounds=THREADS_RANGE)
    model: str = setting(
        "", help="model file, or a shipped model: v1 or v2", flag="--model", metavar="PATH",
        default_help="the shipped v2 model or $MER_MODEL"
    )


def _prefix_ok(value: str) -> None:
    check_prefix(prefix=value)


def _osc_target_ok(value: str) -> None:
    parse_host_port(spec=value, what="--osc (osc.targets)")


@dataclass(frozen=True)
class OscSettings:
    """``[osc]``: the OSC output."""

    enabled: bool = setting(True, help="send no OSC", negative_flag="--no-osc")
    targets: tuple[str, ...] = setting(
        ("127.0.0.1:9000",), help="OSC target, repeatable; turns OSC on even if --config turns it off",
        flag="--osc", metavar="HOST:PORT", append=True, check=_osc_target_ok, enables=True,
    )
    prefix: str = setting(DEFAULT_PREFIX, help="OSC address prefix", flag="--osc-prefix", metavar="PREFIX", check=_prefix_ok)
    format: str = setting(
        OSC_FORMAT_BUNDLE, help="one bundle per update or plain messages", flag="--osc-format", choices=OSC_FORMATS
    )


@dataclass(frozen=True)
class CsvSettings:
    """``[csv]``: the CSV log."""

    path: str = setting("", help="append one row per update to this CSV file", flag="--csv", metavar="PATH", default_help="none")


def _listen_ok(value: str) -> None:
    parse_host_port_or_zero(spec=value)


def _network_ok(value: str) -> None:
    parse_networks(specs=[value])


@dataclass(frozen=True)
class ControlSettings:
    """``[control]``: the OSC control port."""

    enabled: bool = setting(True, help="no control port", negative_flag="--no-control")
    listen: str = setting(
        "127.0.0.1:9001", help="control port; turns it on even if --config turns it off", flag="--control",
        metavar="HOST:PORT", check=_listen_ok, enables=True,
    )
    allow: tuple[str, ...] = setting(
        (), help="also obey the control port from this address or network (CIDR, e.g. 192.168.1.0/24), repeatable",
        flag="--control-allow", metavar="CIDR", append=True, check=_network_ok, default_help="loopback only",
    )


@dataclass(frozen=True)
class LogSettings:
    """``[log]``: what the daemon prints."""

    quiet: bool = setting(False, help="no live readout, warnings only", flag="--quiet", short="-q")


MIDI_APIS = ("alsa", "jack")
MIDI_MAX_RATE_RANGE_HZ = (0.1, 1000.0)


def _midi_api_ok(value: str) -> None:
    if value not in ("", *MIDI_APIS):
        raise ValueError(f"{value!r}: use {' or '.join(MIDI_APIS)}, or \"\" for the first that works")


@dataclass(frozen=True)
class MidiSettings:
    """``[midi]``: MIDI control changes out (:mod:`mer_live.outputs.midi`, ``docs/guide/midi.md``)."""

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
        "", help="MIDI system: alsa or jack", flag="--midi-api", metavar="API", default_help="the first that works",
        check=_midi_api_ok,
    )
    max_rate_hz: float = setting(20.0, help="most control changes per second, per controller", bounds=MIDI_MAX_RATE_RANGE_HZ)
    cc: tuple[dict, ...] = setting((), help="the mapping: [[midi.cc]] tables (value, channel, cc, high_resolution)", tables=True)


@dataclass(frozen=True)
class Settings:
    """All the daemon's settings; a field per TOML section."""

    input: InputSettings = field(default_factory=InputSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    osc: OscSettings = field(default_factory=OscSettings)
    csv: CsvSettings = field(default_factory=CsvSettings)
    control: ControlSettings = field(default_factory=ControlSettings)
    log: LogSettings = field(default_factory=LogSettings)
    midi: MidiSettings = field(default_factory=MidiSettings)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """``{section: {key: value}}`` as in the TOML file (tuples as lists)."""
        return {
            section: {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(part).items()}
            for section, part in ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
        }


def sections() -> dict[str, type]:
    """``{section name: its dataclass}``, in TOML order."""
    return {f.name: f.default_factory for f in dataclasses.fields(Settings)}


def fields_of(*, section: str) -> dict[str, dataclasses.Field]:
    """The fields of one section by name."""
    return {f.name: f for f in dataclasses.fields(sections()[section])}


def check_range(*, value: float, bounds: tuple[float, float], name: str, hint: str | None = None) -> float:
    """``value`` as given, or :class:`ConfigError` when it is not finite or outside the closed ``bounds``.
    The one range check of mer-live: settings, the command line, the control port and the worker use it."""
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{name} = {value} is out of range; " + (hint or f"use {low:g} to {high:g}"))
    return value


def check_value(*, section: str, key: str, value: Any) -> Any:
    """``value`` checked against the limits of ``section.key`` (bounds, choices, check); raises
    :class:`ConfigError` whose message starts with ``section.key``."""
    meta = fields_of(section=section)[key].metadata
    name = f"{section}.{key}"
    if meta["bounds"] is not None:
        try:
            check_range(value=value, bounds=meta["bounds"], name=name)
        except ConfigError as error:
            if meta["hint"]:
                raise ConfigError(f"{name} = {value}; {meta['hint']}") from error
            raise
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ConfigError(f"{name} = {value!r}; use {' or '.join(meta['choices'])}")
    if meta["check"] is not None:
        for item in value if isinstance(value, tuple) else (value,):
            try:
                meta["check"](item)
            except ValueError as error:  # OscSpecError too
                raise ConfigError(f"{name}: {error}") from error
    return value


def _type_name(*, value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, tuple):
        return "a list of strings"
    return type(value).__name__


def coerce(*, section: str, key: str, value: Any) -> Any:
    """``value`` (from TOML or the command line) as the type of the field's default: ints are accepted for
    floats, lists become tuples. Raises :class:`ConfigError` naming ``section.key`` for a wrong type."""
    default = Settings().as_dict()[section][key]
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list) and fields_of(section=section)[key].metadata["tables"]:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, dict) for v in value)
        value = tuple(value) if ok else value
        if not ok:
            raise ConfigError(f"{section}.{key} must be an array of tables ([[{section}.{key}]]), got {value!r}")
    elif isinstance(default, list):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:  # pragma: no cover - every default has one of the types above
        ok = False
    if not ok:
        shown = tuple(default) if isinstance(default, list) else default
        raise ConfigError(f"{section}.{key} must be {_type_name(value=shown)}, got {value!r}")
    return value


def validate(*, settings: Settings) -> Settings:
    """Every field's limits, then the combinations; returns ``settings`` or raises :class:`ConfigError`."""
    for section, part in ((f.name, getattr(settings, f.name)) for f in dataclasses.fields(settings)):
        for key in fields_of(section=section):
            if (section, key) not in ONLY_WHEN_ENABLED:
                check_value(section=section, key=key, value=getattr(part, key))
    if settings.input.demo and settings.input.file:
        raise ConfigError("input.demo and input.file both set; choose --demo or --input FILE")
    if settings.midi.enabled and not (settings.midi.port or settings.midi.virtual):
        raise ConfigError("midi.enabled is true but there is no port: give --midi PORT or --midi-virtual NAME")
    if settings.osc.enabled and not settings.osc.targets:
        raise ConfigError("osc.targets is empty; give at least one HOST:PORT or set osc.enabled = false")
    for section, key in ONLY_WHEN_ENABLED:
        if getattr(settings, section).enabled:
            check_value(section=section, key=key, value=getattr(getattr(settings, section), key))
    return settings


def from_dict(*, values: dict[str, Any], base: Settings | None = None) -> Settings:
    """``base`` (default: the defaults) with ``values`` (``{section: {key: value}}``) applied, each key and
    type checked (not the limits: :func:`validate` does that once, on the final settings)."""
    result = base if base is not None else Settings()
    known = sections()
    for section, entries in values.items():
        if section not in known:
            raise ConfigError(f"unknown section [{section}] (known: {', '.join(known)})")
        if not isinstance(entries, dict):
            raise ConfigError(f"[{section}] must be a table of keys")
        keys = fields_of(section=section)
        changes = {}
        for key, value in entries.items():
            if key not in keys:
                raise ConfigError(f"unknown key {section}.{key} (known in [{section}]: {', '.join(keys)})")
            changes[key] = coerce(section=section, key=key, value=value)
        result = dataclasses.replace(result, **{section: dataclasses.replace(getattr(result, section), **changes)})
    return result


def load_toml(*, path: str | Path) -> dict[str, Any]:
    """Read a TOML file (mer-live's one tomllib shim); raises :class:`ConfigError` with a one-line reason."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as error:
        raise ConfigError(f"config {path}: no such file; check the --config path") from error
    except OSError as error:
        raise ConfigError(f"config {path}: cannot read ({error.strerror})") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"config {path}: not valid TOML ({error}); fix the file (mer-live --print-config writes a valid one)") from error
