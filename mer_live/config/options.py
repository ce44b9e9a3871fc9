"""The daemon's settings from the command line and a TOML file (``--config``) over the defaults, in that
order of precedence (CLI > TOML > defaults). The settings' types, defaults and limits are in
:mod:`mer_live.config.settings`; this module turns them into command-line options and resolves the layers.
``configs/default.toml`` documents every key; ``--config NAME`` also takes a built-in preset
(:mod:`mer_live.config.presets`).

Unknown sections or keys, wrong types and out-of-range values are :class:`ConfigError` with a one-line
message naming the key.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from mer_live.config import presets
from mer_live.config.settings import ConfigError, Settings, from_dict, load_toml, sections, validate

__all__ = ["ConfigError", "add_arguments", "given_on_command_line", "resolve"]


def _dest(*, section: str, key: str) -> str:
    return f"{section}.{key}"


def _negative_dest(*, section: str, key: str) -> str:
    return f"{section}.not_{key}"


def _help(*, field: dataclasses.Field) -> str:
    meta = field.metadata
    if isinstance(field.default, bool):
        return meta["help"]
    default = meta["default_help"]
    if default is None:
        value = field.default_factory() if field.default is dataclasses.MISSING else field.default
        default = " ".join(value) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else value
    return f"{meta['help']} (default: {default})"


def add_arguments(parser: argparse.ArgumentParser) -> dict[str, argparse._ArgumentGroup]:
    """One option group per settings section, with an option for every field that has a ``flag``;
    returns the groups by section name. Every option's default is None (= not given), so that
    :func:`given_on_command_line` sees only what the user typed."""
    groups = {}
    for section, kind in sections().items():
        group = groups[section] = parser.add_argument_group(section)
        for field in dataclasses.fields(kind):
            meta = field.metadata
            if meta["negative_flag"]:
                group.add_argument(
                    meta["negative_flag"], dest=_negative_dest(section=section, key=field.name), action="store_true",
                    default=None, help=meta["help"],
                )
            if not meta["flag"]:
                continue
            names = [name for name in (meta["short"], meta["flag"]) if name]
            options: dict[str, Any] = {"dest": _dest(section=section, key=field.name), "default": None, "help": _help(field=field)}
            if isinstance(field.default, bool):
                options["action"] = "store_true"
            else:
                options["metavar"] = meta["metavar"]
                if meta["append"]:
                    options["action"] = "append"
                elif meta["choices"]:
                    options["choices"] = meta["choices"]
                    options.pop("metavar")
                else:
                    options["type"] = type(field.default)
            group.add_argument(*names, **options)
    return groups


def given_on_command_line(*, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The settings given on the command line, as ``{section: {key: value}}`` (absent ones left out).

    An option that ``enables`` its section (``--osc``, ``--control``) turns that output on, whatever the
    TOML file says (CLI > TOML); its ``negative_flag`` (``--no-osc``, ``--no-control``) turns it off; both
    at once is a :class:`ConfigError`."""
    result: dict[str, dict[str, Any]] = {}
    for section, kind in sections().items():
        enabling, negative, refused = None, None, False
        for field in dataclasses.fields(kind):
            meta = field.metadata
            if meta["negative_flag"]:
                negative = meta["negative_flag"]
                refused = bool(getattr(args, _negative_dest(section=section, key=field.name), None))
            if not meta["flag"]:
                continue
            value = getattr(args, _dest(section=section, key=field.name), None)
            if value is None:
                continue
            result.setdefault(section, {})[field.name] = value
            if meta["enables"]:
                enabling = meta["flag"]
        if negative is None:
            continue
        if enabling and refused:
            raise ConfigError(f"{enabling} and {negative} contradict each other: give one of them")
        if enabling or refused:
            result.setdefault(section, {})["enabled"] = bool(enabling)
    return result


def resolve(*, toml_path: str | Path | None, cli: dict[str, dict[str, Any]]) -> Settings:
    """Defaults, then the TOML file (if any), then the CLI values given (``{section: {key: value}}``),
    validated once. Raises :class:`ConfigError` naming the source and the key."""
    settings = Settings()
    if toml_path:
        values = load_toml(path=presets.locate(toml_path))  # a file, or a built-in preset by name
        try:
            settings = from_dict(values=values, base=settings)
        except ConfigError as error:
            raise ConfigError(f"config {toml_path}: {error}") from error
    try:
        settings = from_dict(values=cli, base=settings)
    except ConfigError as error:
        raise ConfigError(f"command line: {error}") from error
    try:
        return validate(settings=settings)
    except ConfigError as error:
        raise ConfigError(f"bad setting: {error}") from error
