"""mer-live dmx: check a channel map (and a trigger file), or sweep its channels for patching.

``mer-live dmx check MAP [--triggers FILE]`` prints the patch; ``mer-live dmx test MAP`` sends each
channel of the map in turn (up to full and back, ``--step`` seconds each) over sACN or Art-Net, so a
lighting technician can walk the rig and see which fixture answers. A bad map or trigger file is one
line ``mer-live dmx: error: FILE:LINE: reason`` and exit status 2. MAP is a file or a shipped map's name.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from mer_live.core.exit_codes import EXIT_OK, UsageError
from mer_live.outputs.dmx import channel_map as cm
from mer_live.outputs.dmx import signals
from mer_live.outputs.dmx import triggers as tr
from mer_live.outputs.dmx.sender import DEFAULT_FPS, DEFAULT_TTL, PROTOCOLS, FrameClock, Transport, load_cid

HELP = "check a DMX channel map, or sweep its channels for patching"
DESCRIPTION = __doc__.split("\n\n")[0]
DEFAULT_STEP_S = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="dmx_action", metavar="ACTION", required=True, parser_class=type(parser))
    check = actions.add_parser("check", help="print the patch of a map (and a trigger file)")
    check.add_argument("map", metavar="MAP", nargs="?", help=f"a map file or a shipped map ({', '.join(cm.shipped_names())})")
    check.add_argument("--triggers", metavar="FILE", help="also check this trigger file (or a shipped one: eos, qlcplus)")
    check.add_argument("--sources", action="store_true", help="list the values a channel or trigger can follow")
    check.add_argument("--print", action="store_true", dest="print_text",
                       help="print the map file itself (to start your own from a shipped one: > mine.toml)")
    test = actions.add_parser("test", help="sweep each channel of a map in turn over sACN or Art-Net")
    test.add_argument("map", metavar="MAP", help="a map file or a shipped map")
    test.add_argument("--protocol", choices=PROTOCOLS, default="sacn", help="sacn or artnet (default: sacn)")
    test.add_argument("--host", default="", help="unicast or broadcast address (default: sACN multicast, Art-Net 127.0.0.1)")
    test.add_argument("--interface", default="", help="local address to send from (default: the system's choice)")
    test.add_argument("--universe", type=int, default=0, help="the map's universe 1 on the wire (0: sACN 1, Art-Net 0)")
    test.add_argument("--step", type=float, default=DEFAULT_STEP_S, metavar="S", help="seconds per channel (default: 1)")
    test.add_argument("--fps", type=float, default=DEFAULT_FPS, help="frames per second (default: 40)")
    test.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="multicast hops (default: 1)")


def _load_map(spec: str | None) -> cm.ChannelMap:
    if spec is None:
        raise UsageError("give a MAP (a file or a shipped map: " + ", ".join(cm.shipped_names()) + ")")
    try:
        return cm.load(cm.resolve(spec))
    except cm.MapError as error:
        raise UsageError(str(error)) from error


def run(args: argparse.Namespace) -> int:
    if args.dmx_action == "check":
        if args.sources:
            print("\n".join(signals.NAMES))
            if args.map is None and args.triggers is None:
                return EXIT_OK
        if args.map is not None or args.triggers is None:
            channel_map = _load_map(args.map)
            if args.print_text:
                sys.stdout.write(cm.resolve(args.map).read_text(encoding="utf-8"))
            else:
                print(channel_map.describe())
        if args.triggers:
            try:
                print(tr.load(args.triggers).describe())
            except tr.TriggerError as error:
                raise UsageError(str(error)) from error
        return EXIT_OK
    return _sweep(args)


def wire_universes(*, protocol: str, first: int, universes: tuple[int, ...]) -> list[int]:
    """The wire universes of a map's logical ``universes`` (1-based), the first at ``first`` (0: the protocol's own)."""
    base = first or (1 if protocol == "sacn" else 0)
    return [base + universe - 1 for universe in universes]


def patch_slots(channel_map: cm.ChannelMap) -> list[tuple[int, int, str]]:
    """Every slot the map drives, in patch order: ``(universe, slot, label)``."""
    slots = []
    for item in (*channel_map.channels, *channel_map.fixtures):
        for offset in range(item.slots):
            slots.append((item.shape.universe, item.address + offset, f"{item.label} +{offset}" if item.slots > 1 else item.label))
    return sorted(slots)


def _sweep(args: argparse.Namespace) -> int:
    channel_map = _load_map(args.map)
    if not (args.step > 0 and math.isfinite(args.step)):
        raise UsageError(f"--step {args.step}: give a positive number of seconds")
    rows = {universe: row for row, universe in enumerate(channel_map.universes)}
    slots = patch_slots(channel_map)
    try:
        wire = wire_universes(protocol=args.protocol, first=args.universe, universes=channel_map.universes)
        transport = Transport(protocol=args.protocol, universes=wire, host=args.host, interface=args.interface, ttl=args.ttl,
                              cid=load_cid() if args.protocol == "sacn" else None)
    except (OSError, ValueError) as error:
        raise UsageError(f"DMX {args.protocol}: {error}") from error
    start = time.monotonic()

    def render(now: float, dt: float, frame: np.ndarray) -> None:  # noqa: ARG001
        frame[:] = 0
        position = (now - start) / args.step
        index = int(position)
        if index < len(slots):
            universe, slot, _ = slots[index]
            frame[rows[universe], slot - 1] = round(255 * math.sin(math.pi * (position - index)))

    clock = FrameClock(transport=transport, render=render, fps=args.fps, keepalive_s=0.0, name="dmx test")
    clock.start()
    try:
        for index, (universe, slot, label) in enumerate(slots):
            print(f"universe {wire[rows[universe]]} ({args.protocol}) slot {slot:>3}: {label}", flush=True)
            time.sleep(max(0.0, start + (index + 1) * args.step - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        clock.close()
    failed = clock.frames_failed
    print(f"{clock.frames_sent} frame(s) sent, {failed} failed", file=sys.stderr if failed else sys.stdout)
    return EXIT_OK
