"""Every output mer-live has, found in this package: the name of its TOML section, its settings and how to
build and describe its sinks.

An output is one module (or subpackage) of :mod:`mer_live.outputs` with an ``OUTPUT = OutputSpec(...)``
attribute; nothing else names it. From the registry come the ``[NAME]`` section of the settings (TOML keys,
command-line options, the default config), the daemon's sinks and the start-up log line. Importing an
output module must be cheap and must work without its extra (third-party packages are imported when its
sinks are made).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from mer_live.outputs.base import Sink, SinkContext

PACKAGE = "mer_live.outputs"
NOT_OUTPUTS = ("base", "registry")  # the plumbing, not outputs


def _no_check(settings: Any) -> None:
    """The default :attr:`OutputSpec.check`: no combination of settings to refuse."""


def _as_resolved(settings: Any, given: dict[str, Any]) -> Any:
    """The default :attr:`OutputSpec.resolve`: the section as CLI > TOML > defaults made it."""
    return settings


@dataclass(frozen=True)
class OutputSpec:
    """One output.

    ``name``: its TOML section (and the settings' attribute, ``settings.NAME``); ``settings``: its frozen
    settings dataclass, every field declared with :func:`mer_live.core.fields.setting`; ``make(settings, *,
    context)``: its sinks (none when it is off); ``describe(settings)``: fragments of the start-up log line
    (none when off); ``check(settings)``: refuses combinations with a one-line
    :class:`~mer_live.core.fields.ConfigError`; ``resolve(settings, given)``: the section once more, when
    what the command line gave (``given``: ``{key: value}``) must replace more than its own keys (MIDI: a
    port named on the command line replaces the file's virtual port); ``order``: its place among the
    sections, the sinks and the log line (lower first)."""

    name: str
    settings: type
    make: Callable[..., list[Sink]]
    describe: Callable[[Any], list[str]]
    check: Callable[[Any], None] = _no_check
    order: int = 50
    resolve: Callable[[Any, dict[str, Any]], Any] = _as_resolved


@functools.lru_cache(maxsize=None)
def outputs(package: str = PACKAGE) -> dict[str, OutputSpec]:
    """``{name: spec}`` of every output in ``package`` (this one), by ``order`` then name."""
    package_module = importlib.import_module(package)
    specs = []
    for module in pkgutil.iter_modules(package_module.__path__):
        if module.name in NOT_OUTPUTS or module.name.startswith("_"):
            continue
        spec = getattr(importlib.import_module(f"{package}.{module.name}"), "OUTPUT", None)
        if isinstance(spec, OutputSpec):
            specs.append(spec)
    specs.sort(key=lambda spec: (spec.order, spec.name))
    names = [spec.name for spec in specs]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise RuntimeError(f"two outputs share the section name {', '.join(duplicated)}")
    return {spec.name: spec for spec in specs}


def make_sinks(*, settings: Any, context: SinkContext, stack: contextlib.ExitStack) -> list[Sink]:
    """Every enabled output's sinks, in order; each one's ``close`` goes onto ``stack`` as soon as it
    exists, so that a later output that fails to start does not leave the earlier ones open."""
    sinks: list[Sink] = []
    for name, spec in outputs().items():
        for sink in spec.make(getattr(settings, name), context=context):
            sinks.append(stack.enter_context(contextlib.closing(sink)))
    return sinks


def resolve(*, settings: Any, cli: dict[str, dict[str, Any]]) -> Any:
    """``settings`` with every output's :attr:`OutputSpec.resolve` applied to its section and the command
    line's values for it (``cli``: ``{section: {key: value}}``)."""
    changes = {name: spec.resolve(getattr(settings, name), cli.get(name, {})) for name, spec in outputs().items()}
    return dataclasses.replace(settings, **changes)


def describe(*, settings: Any) -> list[str]:
    """The enabled outputs for the start-up log line, e.g. ``["OSC 127.0.0.1:9000 /mer (bundle)"]``."""
    return [text for name, spec in outputs().items() for text in spec.describe(getattr(settings, name))]
