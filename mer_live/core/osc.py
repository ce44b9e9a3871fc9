"""The one OSC 1.0 encoder of mer-live: messages and immediate bundles, byte for byte what python-osc's
builders give (tested), without their parse of the datagram they have just built. The outputs send
readings with it and the control port answers with it; datagrams received are parsed by python-osc.

Argument types: ``str`` -> ``s``; ``int`` -> ``i`` (int32), or ``h`` (int64) outside int32 as python-osc
does; anything else -> ``f`` (float32). Big-endian throughout.
"""

from __future__ import annotations

import functools
import struct

ALIGN = 4  # OSC strings and blobs are padded with NULs to a multiple of 4 bytes
BUNDLE_HEAD = b"#bundle\x00" + struct.pack(">Q", 1)  # "#bundle", then the time tag 1: immediately
INT32_RANGE = (-(2**31), 2**31 - 1)
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")

Argument = float | int | str


def _string(text: str) -> bytes:
    """An OSC string: UTF-8, then 1 to 4 NULs up to a multiple of 4 bytes."""
    data = text.encode("utf-8")
    return data + b"\x00" * (ALIGN - len(data) % ALIGN)


@functools.lru_cache(maxsize=256)
def _head(address: str, tags: str) -> bytes:
    """Address and type tag string of a message (the same few dozen for every reading: cached)."""
    return _string(address) + _string("," + tags)


def _tag(argument: Argument) -> str:
    if isinstance(argument, str):
        return "s"
    if isinstance(argument, int):
        return "i" if INT32_RANGE[0] <= argument <= INT32_RANGE[1] else "h"
    return "f"


def message(*, address: str, arguments: list[Argument] | tuple[Argument, ...]) -> bytes:
    """One OSC message datagram."""
    tags = "".join(_tag(a) for a in arguments)
    if tags == "f" * len(arguments):
        return _head(address, tags) + struct.pack(f">{len(arguments)}f", *arguments)
    body = [
        _string(a) if tag == "s" else _INT32.pack(a) if tag == "i" else _INT64.pack(a) if tag == "h" else struct.pack(">f", a)
        for tag, a in zip(tags, arguments)
    ]
    return _head(address, tags) + b"".join(body)


def bundle(*, messages: list[bytes]) -> bytes:
    """One bundle with the immediate time tag holding ``messages`` (datagrams from :func:`message`)."""
    return BUNDLE_HEAD + b"".join(_INT32.pack(len(m)) + m for m in messages)
