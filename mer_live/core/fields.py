"""How a setting is declared: :func:`setting` (a dataclass field with its default, help, command-line
flag and limits), the one check of a value against those limits, and :class:`ConfigError`.

A leaf module (standard library only). Every stage's and every output's settings dataclass declares its
fields with :func:`setting`; :mod:`mer_live.config.settings` composes them into the root settings and
:mod:`mer_live.config.options` turns them into command-line options.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import Any, Callable


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
    live: bool = False,
    unit: str = "",
    label: str | None = None,
) -> Any:
    """A settings field with its default and its metadata.

    ``help``: one line for ``--help``; ``default_help`` replaces the default shown there. ``flag``/``short``:
    the command-line option (none: TOML only); ``metavar``: its argument's name. ``bounds``: the closed range
    (``hint`` replaces "use LOW to HIGH" in the error); ``choices``: the allowed strings; ``check``: raises
    ValueError for a bad value (given each item of a list). ``append``: a repeatable option building a list.
    ``negative_flag``: for a boolean ``enabled``, the option that turns it off; ``enables``: giving this
    field's option on the command line turns its section's ``enabled`` on. ``tables``: a TOML array of tables
    (``[[section.key]]``, TOML only), checked by the part of mer-live that uses it. ``live``: the running
    daemon takes a new value (the control port's ``/mer/<key>``, ``/mer/query`` and the worker's setters
    are generated from these fields); ``unit``: the unit it is given in (for the log and the OSCQuery tree);
    ``label``: its name in a sentence (default: the key with spaces)."""
    metadata = {
        "help": help, "flag": flag, "short": short, "metavar": metavar, "default_help": default_help,
        "bounds": bounds, "hint": hint, "choices": choices, "check": check, "append": append,
        "negative_flag": negative_flag, "enables": enables, "tables": tables, "live": live,
        "unit": unit, "label": label,
    }
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def check_range(*, value: float, bounds: tuple[float, float], name: str, hint: str | None = None) -> float:
    """``value`` as given (a float ``-0.0`` as ``0.0``), or :class:`ConfigError` when it is not finite or
    outside the closed ``bounds``. The one range check of mer-live: settings, the command line, the
    control port and the worker use it."""
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{name} = {value} is out of range; " + (hint or f"use {low:g} to {high:g}"))
    return value + 0 if value == 0 else value  # -0.0 + 0 is 0.0: no negative zero is stored or echoed


def check_field(*, field: dataclasses.Field, value: Any, name: str) -> Any:
    """``value`` checked against the limits in ``field``'s metadata (bounds, choices, check); raises
    :class:`ConfigError` whose message starts with ``name`` (``section.key``)."""
    meta = field.metadata
    if meta["bounds"] is not None:
        try:
            value = check_range(value=value, bounds=meta["bounds"], name=name)
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


