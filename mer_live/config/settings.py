"""The daemon's settings as types: one frozen dataclass per TOML section, and :class:`Settings` holding them.

The core sections (``[input]``, ``[analysis]``, ``[control]``) are here; every output's section is its own
settings dataclass, in its module under :mod:`mer_live.outputs`, found through
:mod:`mer_live.outputs.registry`. The field names and defaults are the single source of truth:
``configs/default.toml`` lists exactly them (a test checks it), :mod:`mer_live.config.options` builds the command
line's options and their help from them, and the control port's ``/mer/query`` keys are field names.
Every limit lives in a field's metadata (:func:`mer_live.core.fields.setting`), and one checker
(:func:`check_value`) applies it for the TOML file, the command line, the control port and the worker alike.

Adding a setting is one field: ``name: type = setting(default, help=..., flag="--name")`` in its section
(and a line in ``configs/default.toml``). A new output brings its own section (see
:mod:`mer_live.outputs.registry`); a new core section is a frozen dataclass plus an entry of
``CORE_SECTIONS``. ``bounds``, ``choices`` or ``check`` give its limits; ``flag`` puts it on the command line.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from mer_live.audio import SAMPLERATE_RANGE_HZ
from mer_live.core.fields import ConfigError, check_field, setting
from mer_live.core.addresses import parse_host_port_or_zero, parse_networks
from mer_live.outputs import registry

SMOOTHING_RANGE_S = (0.0, 60.0)
FOLLOW_RANGE = (0.0, 10000.0)  # analysis.follow: 1/s per (0-1 unit per second) of mid-level speed
STILL_SPEED_RANGE = (0.0, 10.0)  # analysis.still_speed: 0-1 units per second
CHANGE_RANGE = (0.0, 1.0)  # analysis.change: 0-1 units of an emotion
RATE_RANGE_HZ = (0.5, 30.0)
SILENCE_RANGE_DBFS = (-120.0, 0.0)
THREADS_RANGE = (1, 64)
CHANNEL_MIX = -1  # input.channel: mix the first inputs to mono
MAX_DURATION_S = 1e7  # --duration: about 115 days (longer overflows the frame arithmetic)


ONLY_WHEN_ENABLED = (("control", "listen"),)  # checked only while that output is on


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
    """``[analysis]``: the model and the smoothing; the ``live`` fields change while the daemon runs
    (the control port's ``/mer/<key>``, see :func:`live_settings`)."""

    rate: float = setting(4.0, help="updates per second", flag="--rate", metavar="HZ", bounds=RATE_RANGE_HZ, live=True, unit="updates/s")
    smoothing: float = setting(
        32.0, help="smoothing in seconds while the music holds still: the longest mean (with --change), or the "
        "time constant of a moving average; 0 = off", flag="--smoothing", metavar="S",
        bounds=SMOOTHING_RANGE_S, live=True, unit="s",
    )
    follow: float = setting(
        0.0, help="how fast the smoothing lets go when the music changes: 1/time constant rises by K per unit/s of "
        "mid-level speed above --still-speed; 0 = plain exponential smoothing", flag="--follow", metavar="K",
        bounds=FOLLOW_RANGE, live=True,
    )
    still_speed: float = setting(
        0.08, help="mid-level speed (0-1 units per second, RMS of the 7) below which the music counts as holding "
        "still and --follow does nothing (inert with --follow 0)", flag="--still-speed", metavar="U", bounds=STILL_SPEED_RANGE,
        live=True, unit="units/s",
    )
    change: float = setting(
        0.2, help="change points: when the recent audio would move some emotion by more than U (0-1 units) from "
        "the smoothed value, the smoothing starts again from the new level; between change points the output is "
        "the mean since the last one, over at most --smoothing seconds; 0 = off", flag="--change", metavar="U",
        bounds=CHANGE_RANGE, live=True, label="change threshold",
    )
    silence_dbfs: float = setting(
        -60.0, help="silence gate level", flag="--silence-db", metavar="DBFS", bounds=SILENCE_RANGE_DBFS
    )
    threads: int = setting(1, help="ONNX Runtime threads", flag="--threads", metavar="N", bounds=THREADS_RANGE)
    model: str = setting(
        "", help="model file, or a shipped model: v1, v2 or v3 (default v3)", flag="--model", metavar="PATH",
        default_help="the shipped v2 model or $MER_MODEL"
    )


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


CORE_SECTIONS = {"input": (InputSettings, 0), "analysis": (AnalysisSettings, 5), "control": (ControlSettings, 25)}
"""The sections that are no output: ``{name: (dataclass, order)}``; the outputs' orders are in the registry."""


def _as_dict(self) -> dict[str, dict[str, Any]]:
    """``{section: {key: value}}`` as in the TOML file (tuples as lists)."""
    return {
        section: {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(part).items()}
        for section, part in ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
    }


def _root() -> type:
    """The root settings class: a field per section, the core sections and every registered output's, in
    order (TOML, ``--help`` and the default config list them so)."""
    outputs = registry.outputs()
    clash = sorted(outputs.keys() & CORE_SECTIONS.keys())
    if clash:
        raise RuntimeError(f"an output takes the name of a core section: {', '.join(clash)}")
    entries = [(order, name, kind) for name, (kind, order) in CORE_SECTIONS.items()]
    entries += [(spec.order, name, spec.settings) for name, spec in outputs.items()]
    root = dataclasses.make_dataclass(
        "Settings",
        [(name, kind, field(default_factory=kind)) for _, name, kind in sorted(entries)],
        frozen=True,
        namespace={"as_dict": _as_dict, "__doc__": "All the daemon's settings; a field per TOML section."},
    )
    root.__module__ = __name__  # pickled by name, like a class written out
    return root


Settings = _root()


def live_settings() -> dict[str, tuple[str, dataclasses.Field]]:
    """``{key: (section, field)}`` of every setting declared ``live``, in declaration order: the control
    port's ``/mer/<key>`` addresses, its ``/mer/query`` values and the worker's pending changes."""
    found: dict[str, tuple[str, dataclasses.Field]] = {}
    for section, kind in sections().items():
        for f in dataclasses.fields(kind):
            if f.metadata["live"]:
                if f.name in found:
                    raise RuntimeError(f"two live settings are called {f.name}")
                found[f.name] = (section, f)
    return found


def sections() -> dict[str, type]:
    """``{section name: its dataclass}``, in TOML order."""
    return {f.name: f.default_factory for f in dataclasses.fields(Settings)}


def fields_of(*, section: str) -> dict[str, dataclasses.Field]:
    """The fields of one section by name."""
    return {f.name: f for f in dataclasses.fields(sections()[section])}


def check_value(*, section: str, key: str, value: Any) -> Any:
    """``value`` checked against the limits of ``section.key`` (bounds, choices, check); raises
    :class:`ConfigError` whose message starts with ``section.key``."""
    return check_field(field=fields_of(section=section)[key], value=value, name=f"{section}.{key}")


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
    for name, spec in registry.outputs().items():
        spec.check(getattr(settings, name))
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
