"""DMX lighting output: sACN / Art-Net from a channel map, cue triggers, venue calibration (docs/guide/lighting.md).

This module holds the ``[dmx]`` settings and builds the sinks; the parts are :mod:`.packets` (wire formats),
:mod:`.sender` (the frame clock), :mod:`.channel_map`, :mod:`.sink`, :mod:`.triggers`, :mod:`.venue` and
:mod:`.command` (``mer-live dmx``). Importing it needs numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

from mer_live.core.exit_codes import UsageError
from mer_live.core.fields import ConfigError, setting
from mer_live.outputs.base import DELAY_RANGE_MS, Sink, SinkContext
from mer_live.outputs.registry import OutputSpec

PROTOCOL_CHOICES = ("sacn", "artnet")


def _fps_ok(value: float) -> None:
    if not 1.0 <= value <= 44.0:
        raise ValueError(f"{value:g} frames per second; use 1 to 44 (DMX512 refreshes at most ~44 times a second)")


def _universe_ok(value: int) -> None:
    if not 0 <= value <= 63999:
        raise ValueError(f"{value}; use 0 (the protocol's first), sACN 1-63999 or an Art-Net port address 0-32767")


@dataclass(frozen=True)
class DmxSettings:
    """``[dmx]``: DMX over sACN or Art-Net from a channel map, and cue triggers (docs/guide/lighting.md)."""

    enabled: bool = setting(False, help="send no DMX", negative_flag="--no-dmx")
    map: str = setting("", help="send DMX from this channel map (a file, or rgb-wash, level-bar, all-values); turns DMX on",
                       flag="--dmx", metavar="MAP", default_help="none", enables=True)
    protocol: str = setting("sacn", help="DMX protocol", flag="--dmx-protocol", choices=PROTOCOL_CHOICES)
    host: str = setting("", help="DMX unicast or broadcast address", flag="--dmx-host", metavar="HOST",
                        default_help="sACN multicast; Art-Net 127.0.0.1")
    interface: str = setting("", help="local address to send DMX from (sACN multicast: the interface)", flag="--dmx-interface",
                             metavar="ADDR", default_help="the system's choice")
    port: int = setting(0, help="UDP port (0: the protocol's, 5568 or 6454)", bounds=(0, 65535))
    universe: int = setting(0, help="the map's universe 1 on the wire: sACN 1-63999, Art-Net port address 0-32767; 0: the first",
                            flag="--dmx-universe", metavar="N", check=_universe_ok)
    fps: float = setting(40.0, help="DMX frames per second, 1 to 44", flag="--dmx-fps", metavar="HZ", check=_fps_ok)
    delay_ms: float = setting(0.0, help="delay DMX by this much (to line up with video or a distant rig)", flag="--dmx-delay",
                              metavar="MS", bounds=DELAY_RANGE_MS)
    venue: str = setting("", help="venue profile for range = \"venue\" (mer-live calibrate)", flag="--dmx-venue", metavar="FILE",
                         default_help="none")
    triggers: str = setting("", help="cue triggers from this file (or eos, qlcplus)", flag="--triggers", metavar="FILE",
                            default_help="none")
    priority: int = setting(100, help="sACN priority", bounds=(0, 200))
    source_name: str = setting("mer-live", help="sACN source name")
    ttl: int = setting(1, help="multicast hops (0: this machine only)", bounds=(0, 255))
    keepalive_s: float = setting(0.8, help="re-send an unchanged universe this often (0: every frame)", bounds=(0.0, 10.0))
    relative_minutes: float = setting(5.0, help="the window of range = \"relative\", in minutes", bounds=(0.5, 240.0))
    cid_file: str = setting("", help="where the sACN CID is kept", default_help="~/.local/state/mer-live/sacn-cid")


def make_sinks(settings: DmxSettings, *, context: SinkContext) -> list[Sink]:  # noqa: ARG001 - the registry's signature
    """The DMX sink (when on) and the trigger sink (when a trigger file is given); raises :class:`UsageError`."""
    from pathlib import Path

    from mer_live.outputs.dmx import channel_map as cm
    from mer_live.outputs.dmx import triggers as tr
    from mer_live.outputs.dmx import venue as vn
    from mer_live.outputs.dmx.command import wire_universes
    from mer_live.outputs.dmx.sender import Transport, load_cid
    from mer_live.outputs.dmx.sink import DmxSink

    sinks: list = []
    dmx = None
    if settings.enabled:
        try:
            channel_map = cm.load(cm.resolve(settings.map))
        except cm.MapError as error:
            raise UsageError(f"--dmx: {error}") from error
        venue = vn.load(settings.venue) if settings.venue else None
        cid = load_cid(Path(settings.cid_file) if settings.cid_file else None, source_name=settings.source_name) \
            if settings.protocol == "sacn" else None

        def transport(universes: list[int]) -> Transport:
            return Transport(protocol=settings.protocol, universes=universes, host=settings.host, port=settings.port,
                             interface=settings.interface, ttl=settings.ttl, priority=settings.priority,
                             source_name=settings.source_name, cid=cid)

        first = wire_universes(protocol=settings.protocol, first=settings.universe, universes=(1,))[0]
        try:
            dmx = DmxSink(channel_map=channel_map, transport_factory=transport, universe_base=first, fps=settings.fps,
                          keepalive_s=settings.keepalive_s, delay_ms=settings.delay_ms, venue=venue,
                          relative_minutes=settings.relative_minutes)
        except (OSError, ValueError) as error:
            raise UsageError(f"--dmx: {error}") from error
        sinks.append(dmx)
    if settings.triggers:
        try:
            sinks.append(tr.TriggerSink(triggers=tr.load(settings.triggers), dmx=dmx))
        except tr.TriggerError as error:
            for sink in sinks:
                sink.close()
            raise UsageError(f"--triggers: {error}") from error
    return sinks


def describe(settings: DmxSettings) -> list[str]:
    parts = []
    if settings.enabled:
        where = settings.host or ("multicast" if settings.protocol == "sacn" else "127.0.0.1")
        parts.append(f"DMX {settings.map} over {settings.protocol} to {where} at {settings.fps:g} frames/s")
    if settings.triggers:
        parts.append(f"triggers {settings.triggers}")
    return parts


def check(settings: DmxSettings) -> None:
    if settings.enabled and not settings.map:
        raise ConfigError("dmx.enabled is true but there is no map: give --dmx MAP")
    if settings.protocol == "artnet" and settings.universe > 0x7FFF:
        raise ConfigError(f"dmx.universe = {settings.universe}; an Art-Net port address is 0 to 32767")


OUTPUT = OutputSpec(name="dmx", settings=DmxSettings, make=make_sinks, describe=describe, check=check, order=100)
