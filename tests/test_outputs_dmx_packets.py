"""E1.31 and ArtDmx packets against the published layouts (ANSI E1.31-2018 tables 4-1..4-3; Art-Net 4
ArtDmx), sent over real UDP sockets on loopback and parsed field by field here."""

from __future__ import annotations

import socket
import struct
import uuid

import numpy as np
import pytest

from mer_live.outputs.dmx import packets
from mer_live.outputs.dmx.sender import FrameClock, Transport, load_cid


def _receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    return sock


def _e131_fields(data: bytes) -> dict:
    return {
        "preamble": struct.unpack(">H", data[0:2])[0], "postamble": struct.unpack(">H", data[2:4])[0],
        "acn_id": data[4:16], "root_flags_length": struct.unpack(">H", data[16:18])[0],
        "root_vector": struct.unpack(">I", data[18:22])[0], "cid": uuid.UUID(bytes=data[22:38]),
        "framing_flags_length": struct.unpack(">H", data[38:40])[0], "framing_vector": struct.unpack(">I", data[40:44])[0],
        "source_name": data[44:108].split(b"\x00")[0].decode(), "priority": data[108],
        "sync_address": struct.unpack(">H", data[109:111])[0], "sequence": data[111], "options": data[112],
        "universe": struct.unpack(">H", data[113:115])[0], "dmp_flags_length": struct.unpack(">H", data[115:117])[0],
        "dmp_vector": data[117], "address_type": data[118], "first_address": struct.unpack(">H", data[119:121])[0],
        "increment": struct.unpack(">H", data[121:123])[0], "count": struct.unpack(">H", data[123:125])[0],
        "start_code": data[125], "slots": data[126:],
    }


def test_e131_packet_layout_over_udp() -> None:
    receiver = _receiver()
    cid = uuid.uuid4()
    transport = Transport(protocol="sacn", universes=[300], host="127.0.0.1", port=receiver.getsockname()[1],
                          priority=150, source_name="mer-live bench", cid=cid)
    slots = np.arange(512, dtype=np.uint8)
    assert transport.send(0, slots)
    assert transport.send(0, slots)
    first, second = receiver.recv(1000), receiver.recv(1000)
    assert len(first) == 638
    fields = _e131_fields(first)
    assert fields["preamble"] == 0x0010 and fields["postamble"] == 0
    assert fields["acn_id"] == b"ASC-E1.17\x00\x00\x00"
    assert fields["root_flags_length"] == 0x7000 | (638 - 16)
    assert fields["root_vector"] == 0x00000004
    assert fields["cid"] == cid
    assert fields["framing_flags_length"] == 0x7000 | (638 - 38)
    assert fields["framing_vector"] == 0x00000002
    assert fields["source_name"] == "mer-live bench"
    assert fields["priority"] == 150 and fields["sync_address"] == 0 and fields["options"] == 0
    assert fields["universe"] == 300
    assert fields["dmp_flags_length"] == 0x7000 | (638 - 115)
    assert fields["dmp_vector"] == 0x02 and fields["address_type"] == 0xA1
    assert fields["first_address"] == 0 and fields["increment"] == 1 and fields["count"] == 513
    assert fields["start_code"] == 0 and fields["slots"] == slots.tobytes()
    assert _e131_fields(second)["sequence"] == (fields["sequence"] + 1) % 256
    transport.terminate(np.zeros((1, 512), dtype=np.uint8))
    terminated = [_e131_fields(receiver.recv(1000)) for _ in range(3)]
    assert all(t["options"] & 0x40 for t in terminated)
    assert [t["sequence"] for t in terminated] == [2, 3, 4]
    transport.close()


def test_sequence_wraps_and_artdmx_layout_over_udp() -> None:
    receiver = _receiver()
    port_address = packets.artnet_port_address(net=3, subnet=5, universe=9)
    transport = Transport(protocol="artnet", universes=[port_address], host="127.0.0.1", port=receiver.getsockname()[1])
    sequences = []
    for value in range(300):
        assert transport.send(0, np.full(512, value % 256, dtype=np.uint8))
        data = receiver.recv(1000)
        sequences.append(data[12])
    assert len(data) == 18 + 512
    assert data[0:8] == b"Art-Net\x00"
    assert struct.unpack("<H", data[8:10])[0] == 0x5000  # OpCode, little-endian
    assert struct.unpack(">H", data[10:12])[0] == 14  # protocol version, big-endian
    assert data[13] == 0  # physical
    assert data[14] == (5 << 4) | 9 and data[15] == 3  # SubUni, Net
    assert struct.unpack(">H", data[16:18])[0] == 512
    assert data[18:] == bytes([299 % 256]) * 512
    assert 0 not in sequences and sequences[:3] == [1, 2, 3] and sequences[255] == 1  # 1-255, then 1 again
    assert packets.ARTNET_PORT == 6454 and packets.E131_PORT == 5568
    transport.close()


@pytest.mark.parametrize("universe, group", [(1, "239.255.0.1"), (255, "239.255.0.255"), (256, "239.255.1.0"), (63999, "239.255.249.255")])
def test_multicast_groups(universe: int, group: str) -> None:
    assert packets.e131_multicast_group(universe) == group


@pytest.mark.parametrize("universe", [0, 64000, -1])
def test_sacn_universe_out_of_range(universe: int) -> None:
    with pytest.raises(ValueError, match="out of range; use 1 to 63999"):
        packets.e131_multicast_group(universe)


def test_cid_is_kept_across_restarts(tmp_path) -> None:
    path = tmp_path / "state" / "sacn-cid"
    first = load_cid(path)
    assert load_cid(path) == first and path.read_text().strip() == str(first)


def test_unwritable_cid_file_still_gives_a_stable_cid(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert load_cid(blocker / "cid") == load_cid(blocker / "cid")


def test_no_route_fails_frames_without_raising_and_keepalive_thins_held_frames() -> None:
    transport = Transport(protocol="artnet", universes=[0], host="203.0.113.1", interface="127.0.0.1")  # no route from loopback
    clock = FrameClock(transport=transport, render=lambda now, dt, frame: None, fps=40, keepalive_s=0.8)
    for step in range(5):
        clock.tick(step * 0.025, 0.025)
    assert clock.frames_failed == 5 and not clock.ok
    clock.close()
    receiver = _receiver()
    transport = Transport(protocol="artnet", universes=[0], host="127.0.0.1", port=receiver.getsockname()[1])
    clock = FrameClock(transport=transport, render=lambda now, dt, frame: None, fps=40, keepalive_s=0.8)
    for step in range(80):  # 2 s of a held (all-zero) frame at 40 Hz
        clock.tick(step * 0.025, 0.025)
    receiver.settimeout(0.2)
    received = 0
    try:
        while True:
            receiver.recv(1000)
            received += 1
    except TimeoutError:
        pass
    assert 4 <= received <= 7, received  # 3 identical frames, then one every 0.8 s
    clock.close()


def test_a_host_that_does_not_resolve_never_delays_the_lane(caplog) -> None:
    import time

    from dmx_helpers import reading

    from mer_live.outputs.dmx import channel_map as cm
    from mer_live.outputs.dmx.sink import DmxSink

    text = '[[channel]]\naddress = 1\nsource = "emotion.energy"\n[[channel]]\naddress = 1\nsource = "level"\nuniverse = 2\n'
    sink = DmxSink(channel_map=cm.parse(text), fps=40,
                   transport_factory=lambda u: Transport(protocol="artnet", universes=u, host="no-such-host.invalid"))
    try:
        slowest = 0.0
        for _ in range(20):
            start = time.perf_counter()
            sink.process(reading=reading())
            slowest = max(slowest, time.perf_counter() - start)
            time.sleep(0.05)
        assert slowest < 0.01  # the lane only stores the reading; lookups happen on the frame clock's thread
        assert sink.frames.frames_failed > 10 and sink.frames.frames_sent == 0
        assert sink.dropped >= 19 and sink.delivered <= 1  # the first update came before any frame had failed
    finally:
        sink.close()
    assert any("cannot resolve" in record.getMessage() for record in caplog.records)
