"""DMX over IP on the wire: E1.31 (sACN) data packets and Art-Net ArtDmx packets.

Both are fixed layouts, built once per universe into a ``bytearray`` and then patched in place each
frame (sequence number, options, slots), so sending a frame allocates nothing beyond the socket call.

* E1.31 (ANSI E1.31-2018): root layer (38 bytes), framing layer (77), DMP layer (11 + start code +
  slots): 638 bytes for 512 slots; UDP port 5568; multicast group 239.255.hi.lo of the universe.
* Art-Net 4 ArtDmx: "Art-Net\\0", OpCode 0x5000 little-endian, protocol version 14, sequence, physical,
  SubUni, Net, length (big-endian, even), slots; UDP port 6454.
"""

from __future__ import annotations

import struct
import uuid

SLOTS = 512  # DMX512: slots per universe

# ----------------------------------------------------------------------------------------- E1.31
E131_PORT = 5568
E131_UNIVERSES = (1, 63999)
E131_PRIORITIES = (0, 200)
E131_DEFAULT_PRIORITY = 100
E131_SOURCE_NAME_BYTES = 64
E131_ACN_IDENTIFIER = b"ASC-E1.17\x00\x00\x00"
E131_VECTOR_ROOT_DATA = 0x00000004
E131_VECTOR_FRAMING_DATA = 0x00000002
E131_VECTOR_DMP_SET_PROPERTY = 0x02
E131_DMP_ADDRESS_DATA_TYPE = 0xA1
E131_FLAGS = 0x7000  # the flags nibble of every PDU's flags-and-length field
E131_OPTION_PREVIEW = 0x80
E131_OPTION_TERMINATED = 0x40
E131_OPTION_FORCE_SYNC = 0x20
E131_TERMINATE_PACKETS = 3  # E1.31 6.2.6: three packets with the Stream_Terminated bit on stop
E131_ROOT_OFFSET = 0
E131_FRAMING_OFFSET = 38
E131_DMP_OFFSET = 115
E131_HEADER_BYTES = 126  # up to and including the DMX start code
E131_PRIORITY_AT = 108
E131_SEQUENCE_AT = 111
E131_OPTIONS_AT = 112
E131_UNIVERSE_AT = 113
E131_CID_AT = 22
E131_SOURCE_NAME_AT = 44
E131_MULTICAST_PREFIX = (239, 255)

_E131_HEAD = struct.Struct(
    ">HH12sHI16s"  # root: preamble, postamble, ACN id, flags+length, vector, CID
    "HI64sBHBBH"  # framing: flags+length, vector, source name, priority, sync address, sequence, options, universe
    "HBBHHHB"  # DMP: flags+length, vector, address/data type, first address, increment, count, start code
)
assert _E131_HEAD.size == E131_HEADER_BYTES


def check_e131_universe(universe: int) -> int:
    low, high = E131_UNIVERSES
    if not low <= universe <= high:
        raise ValueError(f"sACN universe {universe} is out of range; use {low} to {high}")
    return universe


def e131_multicast_group(universe: int) -> str:
    """The multicast address of an sACN universe: 239.255.hi.lo (E1.31 9.3.1)."""
    check_e131_universe(universe)
    return f"{E131_MULTICAST_PREFIX[0]}.{E131_MULTICAST_PREFIX[1]}.{universe >> 8}.{universe & 0xFF}"


def e131_packet(*, universe: int, cid: uuid.UUID, source_name: str, priority: int = E131_DEFAULT_PRIORITY, slots: int = SLOTS) -> bytearray:
    """A data packet for ``universe`` with all ``slots`` at 0, sequence 0 and no options."""
    check_e131_universe(universe)
    if not E131_PRIORITIES[0] <= priority <= E131_PRIORITIES[1]:
        raise ValueError(f"sACN priority {priority} is out of range; use {E131_PRIORITIES[0]} to {E131_PRIORITIES[1]}")
    if not 1 <= slots <= SLOTS:
        raise ValueError(f"{slots} slots; use 1 to {SLOTS}")
    length = E131_HEADER_BYTES + slots
    name = source_name.encode("utf-8")[: E131_SOURCE_NAME_BYTES - 1]  # NUL-terminated within 64 bytes
    head = _E131_HEAD.pack(
        0x0010, 0x0000, E131_ACN_IDENTIFIER, E131_FLAGS | (length - E131_ROOT_OFFSET - 16), E131_VECTOR_ROOT_DATA, cid.bytes,
        E131_FLAGS | (length - E131_FRAMING_OFFSET), E131_VECTOR_FRAMING_DATA, name, priority, 0, 0, 0, universe,
        E131_FLAGS | (length - E131_DMP_OFFSET), E131_VECTOR_DMP_SET_PROPERTY, E131_DMP_ADDRESS_DATA_TYPE, 0x0000, 0x0001,
        slots + 1, 0x00,
    )
    return bytearray(head) + bytearray(slots)


# --------------------------------------------------------------------------------------- Art-Net
ARTNET_PORT = 6454
ARTNET_ID = b"Art-Net\x00"
ARTNET_OPCODE_DMX = 0x5000
ARTNET_PROTOCOL_VERSION = 14
ARTNET_HEADER_BYTES = 18
ARTNET_SEQUENCE_AT = 12
ARTNET_PORT_ADDRESSES = (0, 0x7FFF)  # 15 bits: net (7) . subnet (4) . universe (4)
ARTNET_SEQUENCE_MAX = 255  # 1-255, wrapping past 0 (0 means "sequencing off")

_ARTNET_OPCODE = struct.Struct("<H")
_ARTNET_VERSION = struct.Struct(">H")
_ARTNET_LENGTH = struct.Struct(">H")


def artnet_port_address(*, net: int, subnet: int, universe: int) -> int:
    """The 15-bit port address of net (0-127), subnet (0-15) and universe (0-15)."""
    for name, value, high in (("net", net, 127), ("subnet", subnet, 15), ("universe", universe, 15)):
        if not 0 <= value <= high:
            raise ValueError(f"Art-Net {name} {value} is out of range; use 0 to {high}")
    return (net << 8) | (subnet << 4) | universe


def artdmx_packet(*, port_address: int, slots: int = SLOTS) -> bytearray:
    """An ArtDmx packet for ``port_address`` with all ``slots`` at 0 and sequence 0 (set per frame)."""
    if not ARTNET_PORT_ADDRESSES[0] <= port_address <= ARTNET_PORT_ADDRESSES[1]:
        raise ValueError(f"Art-Net port address {port_address} is out of range; use 0 to {ARTNET_PORT_ADDRESSES[1]}")
    if not 2 <= slots <= SLOTS or slots % 2:
        raise ValueError(f"{slots} slots; Art-Net wants an even number from 2 to {SLOTS}")
    head = ARTNET_ID + _ARTNET_OPCODE.pack(ARTNET_OPCODE_DMX) + _ARTNET_VERSION.pack(ARTNET_PROTOCOL_VERSION)
    head += bytes((0, 0, port_address & 0xFF, port_address >> 8)) + _ARTNET_LENGTH.pack(slots)
    assert len(head) == ARTNET_HEADER_BYTES
    return bytearray(head) + bytearray(slots)


def next_artnet_sequence(sequence: int) -> int:
    """1, 2, ..., 255, 1, ... (0 is reserved for "no sequencing")."""
    return sequence % ARTNET_SEQUENCE_MAX + 1
