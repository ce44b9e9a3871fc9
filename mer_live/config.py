"""The daemon's settings: defaults, a TOML file (``--config``), and the command line, in that order of
increasing precedence (CLI > TOML > defaults). ``configs/default.toml`` documents every key.

Unknown sections or keys, wrong types and out-of-range values are :class:`ConfigError` with a one-line
message naming the key.
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from .addresses import OscSpecError, check_prefix, parse_host_port, parse_host_port_or_zero
from .settings import (
    CHANNEL_MIX,
    DEFAULTS,
    MAX_SAMPLERATE,
    OSC_FORMATS,
    RATE_RANGE_HZ,
    SILENCE_RANGE_DBFS,
    SMOOTHING_RANGE_S,
    THREADS_RANGE,
)


class ConfigError(ValueError):
    """A bad setting; the message names the key and says what is expected."""


def _type_name(*, value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list of strings"
    return type(value).__name__


def _coerce(*, key: str, default: Any, value: Any, source: str) -> Any:
    """``value`` checked against the type of ``default`` (ints are accepted for floats)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:  # pragma: no cover - every default has one of the types above
        ok = False
    if not ok:
        raise ConfigError(f"{source}: {key} must be {_type_name(value=default)}, got {value!r}")
    return value


def merge(*, base: dict[str, dict[str, Any]], overrides: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """``base`` updated with ``overrides`` (``{section: {key: value}}``), checking every key and type."""
    result = copy.deepcopy(base)
    for section, entries in overrides.items():
        if section not in DEFAULTS:
            raise ConfigError(f"{source}: unknown section [{section}] (known: {', '.join(DEFAULTS)})")
        if not isinstance(entries, dict):
            raise ConfigError(f"{source}: [{section}] must be a table of keys")
        for key, value in entries.items():
            if key not in DEFAULTS[section]:
                raise ConfigError(
                    f"{source}: unknown key {section}.{key} (known in [{section}]: {', '.join(DEFAULTS[section])})"
                )
            result[section][key] = _coerce(key=f"{section}.{key}", default=DEFAULTS[section][key], value=value, source=source)
    return result


def load_toml(*, path: str | Path) -> dict[str, Any]:
    """Read a TOML file; raises :class:`ConfigError` with a one-line reason."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as error:
        raise ConfigError(f"config {path}: no such file; check the --config path") from error
    except OSError as error:
        raise ConfigError(f"config {path}: cannot read ({error.strerror})") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"config {path}: not valid TOML ({error}); fix the file or see configs/default.toml") from error


def _check_range(*, key: str, value: float, bounds: tuple[float, float], source: str) -> None:
    low, high = bounds
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{source}: {key} = {value} is out of range; use {low} to {high}")


def validate(*, settings: dict[str, dict[str, Any]], source: str = "config") -> dict[str, dict[str, Any]]:
    """Check values (ranges, specs, combinations); returns ``settings``."""
    analysis, inputs, osc = settings["analysis"], settings["input"], settings["osc"]
    _check_range(key="analysis.rate", value=analysis["rate"], bounds=RATE_RANGE_HZ, source=source)
    _check_range(key="analysis.smoothing", value=analysis["smoothing"], bounds=SMOOTHING_RANGE_S, source=source)
    _check_range(key="analysis.silence_dbfs", value=analysis["silence_dbfs"], bounds=SILENCE_RANGE_DBFS, source=source)
    _check_range(key="analysis.threads", value=analysis["threads"], bounds=THREADS_RANGE, source=source)
    if inputs["channel"] < CHANNEL_MIX:
        raise ConfigError(f"{source}: input.channel = {inputs['channel']}; use a 0-based channel number, or -1 for a mono mix")
    if not 0 <= inputs["samplerate"] <= MAX_SAMPLERATE:
        raise ConfigError(f"{source}: input.samplerate = {inputs['samplerate']}; use 0 (the device's rate) or a rate in Hz")
    if not (math.isfinite(inputs["duration"]) and inputs["duration"] >= 0.0):
        raise ConfigError(f"{source}: input.duration = {inputs['duration']}; use seconds >= 0 (0 = no limit)")
    if inputs["demo"] and inputs["file"]:
        raise ConfigError(f"{source}: input.demo and input.file both set; choose --demo or --input FILE")
    if osc["format"] not in OSC_FORMATS:
        raise ConfigError(f"{source}: osc.format = {osc['format']!r}; use {' or '.join(OSC_FORMATS)}")
    try:
        check_prefix(prefix=osc["prefix"])
    except ValueError as error:
        raise ConfigError(f"{source}: osc.prefix: {error}") from error
    if osc["enabled"] and not osc["targets"]:
        raise ConfigError(f"{source}: osc.targets is empty; give at least one HOST:PORT or set osc.enabled = false")
    for target in osc["targets"]:
        try:
            parse_host_port(spec=target, what="--osc (osc.targets)")
        except OscSpecError as error:
            raise ConfigError(f"{source}: {error}") from error
    if settings["control"]["enabled"]:
        try:
            parse_host_port_or_zero(spec=settings["control"]["listen"])
        except OscSpecError as error:
            raise ConfigError(f"{source}: control.listen: {error}") from error
    return settings


def resolve(*, toml_path: str | Path | None, cli: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Defaults, then the TOML file (if any), then the CLI values given (``{section: {key: value}}``)."""
    settings = copy.deepcopy(DEFAULTS)
    if toml_path:
        settings = merge(base=settings, overrides=load_toml(path=toml_path), source=f"config {toml_path}")
    settings = merge(base=settings, overrides=cli, source="command line")
    return validate(settings=settings, source="bad setting")
