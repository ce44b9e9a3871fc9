"""The terminal output, TOML ``[log]``: the full-screen meter (:mod:`mer_live.outputs.meter`) when stdout
is a terminal, else the one-line readout on stderr (:mod:`mer_live.outputs.readout`); nothing with
``--quiet``."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from mer_live.core.fields import setting
from mer_live.outputs.base import Sink, SinkContext
from mer_live.outputs.registry import OutputSpec


@dataclass(frozen=True)
class LogSettings:
    """``[log]``: what the daemon prints."""

    quiet: bool = setting(False, help="no live readout, warnings only", flag="--quiet", short="-q")


def make_sinks(settings: LogSettings, *, context: SinkContext) -> list[Sink]:
    if settings.quiet:
        return []
    if sys.stdout is not None and sys.stdout.isatty():  # a terminal: the full-screen meter; a pipe or a file: the line readout
        from mer_live.outputs.meter import Meter

        return [Meter()]
    from mer_live.outputs.readout import Readout

    return [Readout(stream=context.stderr)]


def describe(settings: LogSettings) -> list[str]:
    return []  # the meter and the readout are seen, not logged


OUTPUT = OutputSpec(name="log", settings=LogSettings, make=make_sinks, describe=describe, order=90)
