"""Settings written back as TOML (``mer-live --print-config``): every section and key with its value and a
comment made from the field's declaration (option, help, limits), so the output is a complete config file
that ``--config`` reads back to the same settings (a test checks the round trip)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any

from mer_live.config.settings import Settings, fields_of, sections

HEADER = (
    "# mer-live settings, every key (mer-live --print-config): the defaults, then --config, then the command line.",
    "# Save it, keep the keys you change, and load it with --config FILE; the command line still wins.",
)
SPHINX_MARKUP = re.compile(r"(?::\w+:)?`+([^`]*)`+")  # :mod:`x` and ``x`` -> x


def _value(value: Any) -> str:
    """One TOML value: booleans, numbers, strings (JSON escapes are TOML escapes), arrays of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"no TOML for {value!r} in a config file")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _comment(field: dataclasses.Field) -> str:
    meta = field.metadata
    flag = " ".join(part for part in (meta.get("flag"), meta.get("metavar")) if part)
    option = " / ".join(part for part in (flag, meta.get("negative_flag")) if part)
    text = meta.get("help", "")
    bounds = meta.get("bounds")
    if bounds is not None and all(math.isfinite(limit) for limit in bounds):
        text += f" ({bounds[0]:g} to {bounds[1]:g})"
    elif meta.get("choices"):
        text += f" ({' or '.join(meta['choices'])})"
    return f"{option}: {text}" if option else text


def _section_title(section_type: type) -> str:
    return SPHINX_MARKUP.sub(r"\1", (section_type.__doc__ or "").strip().splitlines()[0])


def render(settings: Settings) -> str:
    """``settings`` as a TOML document: ``[section]`` tables in order, then each array of tables
    (``[[midi.cc]]``) after its section's plain keys."""
    values = settings.as_dict()
    lines = list(HEADER)
    for section, section_type in sections().items():
        lines += ["", f"# {_section_title(section_type)}", f"[{section}]"]
        tables = []
        for key, field in fields_of(section=section).items():
            value = values[section][key]
            if field.metadata.get("tables") and value:
                tables.append((key, value, _comment(field)))
                continue
            lines.append(f"{key} = {_value(value)}  # {_comment(field)}")
        for key, rows, comment in tables:
            lines.append(f"# {key}: {comment}")
            for row in rows:
                lines += ["", f"[[{section}.{key}]]", *(f"{name} = {_value(item)}" for name, item in row.items())]
    return "\n".join(lines) + "\n"
