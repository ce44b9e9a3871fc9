"""The DMX sender: a frame clock of its own that sends sACN (E1.31) or Art-Net at a steady rate.

:class:`Transport` owns one non-blocking UDP socket and one packet per universe (:mod:`.packets`),
patched in place each frame. :class:`FrameClock` is a thread that calls a ``render(now, dt, frame)``
function ``fps`` times a second and sends what it rendered; a universe whose slots have not changed is
sent again only every ``keepalive_s`` (after three identical packets, as E1.31 6.6.1 allows), so a rig
that holds a look still sees the source alive. On close it sends E1.31's three stream-terminated
packets per universe.

Nothing here blocks the caller: a full socket buffer, an unplugged cable or a receiver that has gone
make a frame fail (counted, logged at most once per ``LOG_INTERVAL_S``), and the next frame tries again.
A host name (rather than an address) is looked up on the frame clock's thread, so a slow resolver
delays only DMX itself, never the analysis or another output.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mer_live.core.rate_limit import RateLimitedLog
from mer_live.outputs.dmx import packets
from mer_live.outputs.dmx.packets import SLOTS

LOG = logging.getLogger("mer_live")

PROTOCOLS = ("sacn", "artnet")
DEFAULT_FPS = 40.0
FPS_RANGE = (1.0, 44.0)  # DMX512 refreshes at most ~44 full frames a second
DEFAULT_KEEPALIVE_S = 0.8
IDENTICAL_BEFORE_KEEPALIVE = 3
RESOLVE_RETRY_S = 5.0
LOG_INTERVAL_S = 10.0
JOIN_TIMEOUT_S = 1.0
DEFAULT_TTL = 1
ARTNET_DEFAULT_HOST = "127.0.0.1"  # broadcast floods the whole network: ask for it by address
CID_FILE_NAME = "sacn-cid"


def default_cid_path() -> Path:
    """Where the sACN CID is kept: ``$XDG_STATE_HOME/mer-live/sacn-cid`` (``~/.local/state`` by default)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "mer-live" / CID_FILE_NAME


def load_cid(path: Path | None = None, *, source_name: str = "mer-live") -> uuid.UUID:
    """The sender's CID, the same across restarts: read from ``path``, or made (random) and saved there.
    If the file cannot be written, a CID derived from the host and source names (stable too) is used."""
    path = default_cid_path() if path is None else Path(path)
    try:
        return uuid.UUID(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        pass
    cid = uuid.uuid4()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(str(cid) + "\n", encoding="ascii")
        os.replace(temporary, path)
    except OSError as error:
        cid = uuid.uuid5(uuid.NAMESPACE_DNS, f"{socket.gethostname()}/{source_name}")
        LOG.warning("sACN: cannot save the CID in %s (%s); using %s, derived from the host name", path, error.strerror, cid)
    return cid


def _numeric(host: str) -> bool:
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return host.count(".") == 3


class Transport:
    """One protocol's packets for a list of universes, and the socket they go out on.

    ``protocol``: ``sacn`` or ``artnet``. ``universes``: the wire universes, one per frame row (sACN
    1-63999; Art-Net port addresses 0-32767). ``host``: a unicast or broadcast address or host name;
    "" means sACN multicast (239.255.hi.lo per universe) or Art-Net to ``ARTNET_DEFAULT_HOST``.
    ``interface``: the local address to send from (and, for multicast, the interface); "" = the OS's
    choice. ``ttl``: multicast hops (0 keeps packets on this machine).
    """

    def __init__(
        self, *, protocol: str, universes: list[int], host: str = "", port: int = 0, interface: str = "",
        ttl: int = DEFAULT_TTL, priority: int = packets.E131_DEFAULT_PRIORITY, source_name: str = "mer-live",
        cid: uuid.UUID | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"DMX protocol {protocol!r}; use sacn or artnet")
        self.protocol = protocol
        self.universes = list(universes)
        self.multicast = protocol == "sacn" and not host
        self.port = port or (packets.E131_PORT if protocol == "sacn" else packets.ARTNET_PORT)
        if protocol == "sacn":
            self.cid = cid if cid is not None else uuid.uuid4()
            self._packets = [packets.e131_packet(universe=u, cid=self.cid, source_name=source_name, priority=priority) for u in self.universes]
            self._slots_at = packets.E131_HEADER_BYTES
            self._hosts = [packets.e131_multicast_group(u) for u in self.universes] if self.multicast else [host] * len(self.universes)
        else:
            self.cid = None
            self._packets = [packets.artdmx_packet(port_address=u) for u in self.universes]
            self._slots_at = packets.ARTNET_HEADER_BYTES
            self._hosts = [host or ARTNET_DEFAULT_HOST] * len(self.universes)
        self._sequence = [0] * len(self.universes)
        self._addresses: list[tuple[str, int]] | None = None
        self._next_resolve = 0.0
        self._log = RateLimitedLog(logger=LOG, window_s=LOG_INTERVAL_S)
        self.label = f"{'sACN' if protocol == 'sacn' else 'Art-Net'} {'multicast' if self.multicast else self._hosts[0]}"
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._socket.setblocking(False)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if interface:
                self._socket.bind((interface, 0))
            if self.multicast:
                self._socket.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
                self._socket.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
                if interface:
                    self._socket.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
        except OSError:
            self._socket.close()
            raise
        if all(_numeric(h) for h in self._hosts):
            self._addresses = [(h, self.port) for h in self._hosts]

    def _resolve(self) -> bool:
        """Look the host name up (on the caller's thread: the frame clock's), at most every ``RESOLVE_RETRY_S``."""
        if self._addresses is not None:
            return True
        now = time.monotonic()
        if now < self._next_resolve:
            return False
        try:
            address = socket.getaddrinfo(self._hosts[0], self.port, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
        except (OSError, UnicodeError) as error:
            self._next_resolve = time.monotonic() + RESOLVE_RETRY_S
            self._log.log(key="resolve", message=f"DMX {self.label}: cannot resolve ({error}); retrying")
            return False
        self._addresses = [(address, self.port)] * len(self.universes)
        return True

    def send(self, row: int, slots: bytes | np.ndarray, *, terminated: bool = False) -> bool:
        """Send universe ``row`` with ``slots`` (512 values); returns whether it went out."""
        packet = self._packets[row]
        packet[self._slots_at : self._slots_at + SLOTS] = slots if isinstance(slots, bytes) else bytes(slots)
        if self.protocol == "sacn":
            packet[packets.E131_SEQUENCE_AT] = self._sequence[row]
            packet[packets.E131_OPTIONS_AT] = packets.E131_OPTION_TERMINATED if terminated else 0
            self._sequence[row] = (self._sequence[row] + 1) & 0xFF
        else:
            self._sequence[row] = packets.next_artnet_sequence(self._sequence[row])
            packet[packets.ARTNET_SEQUENCE_AT] = self._sequence[row]
        if not self._resolve():
            return False
        try:
            self._socket.sendto(packet, self._addresses[row])
        except OSError as error:  # no route, network down, a full buffer (BlockingIOError), refused
            self._log.log(key="send", message=f"DMX {self.label}: send failed ({error}); carrying on")
            return False
        return True

    def terminate(self, frame: np.ndarray) -> None:
        """sACN: three packets per universe with the Stream_Terminated option (E1.31 6.2.6); Art-Net has none.
        Sent only to an address already known: closing never waits for a name lookup."""
        if self.protocol != "sacn" or self._addresses is None:
            return
        for _ in range(packets.E131_TERMINATE_PACKETS):
            for row in range(len(self.universes)):
                self.send(row, frame[row], terminated=True)

    def close(self) -> None:
        self._socket.close()


Render = Callable[[float, float, np.ndarray], None]  # (now, dt since the last frame, frame to fill)


class FrameClock:
    """A thread that renders and sends a frame ``fps`` times a second (see the module docstring).

    ``frames_sent`` / ``frames_failed`` count frames (a frame fails when any universe's packet did not go);
    ``ok`` says whether the last frame went out.
    """

    def __init__(
        self, *, transport: Transport, render: Render, fps: float = DEFAULT_FPS, keepalive_s: float = DEFAULT_KEEPALIVE_S,
        clock: Callable[[], float] = time.monotonic, name: str = "dmx",
    ) -> None:
        low, high = FPS_RANGE
        if not low <= fps <= high:
            raise ValueError(f"DMX frame rate {fps:g} is out of range; use {low:g} to {high:g} frames per second")
        self.transport = transport
        self._render = render
        self.period_s = 1.0 / fps
        self._keepalive_s = keepalive_s
        self._clock = clock
        self.frame = np.zeros((len(transport.universes), SLOTS), dtype=np.uint8)
        self._last = [b""] * len(transport.universes)
        self._identical = [0] * len(transport.universes)
        self._last_sent = [-float("inf")] * len(transport.universes)
        self._stopping = False
        self.frames_sent = 0
        self.frames_failed = 0
        self.ok = True
        self.cpu_s = 0.0  # CPU time of the frame clock's thread (rendering and sending), for the log
        self.wall_s = 0.0
        self._thread = threading.Thread(target=self._run, name=f"mer-live-output {name} frames", daemon=True)
        self._started = False

    def start(self) -> None:
        self._started = True
        self._thread.start()

    def tick(self, now: float, dt: float) -> None:
        """Render and send one frame (the thread calls this; tests may too)."""
        self._render(now, dt, self.frame)
        ok = True
        for row in range(len(self.frame)):
            data = self.frame[row].tobytes()
            self._identical[row] = self._identical[row] + 1 if data == self._last[row] else 0
            if (
                self._keepalive_s > 0.0 and self._identical[row] >= IDENTICAL_BEFORE_KEEPALIVE
                and now - self._last_sent[row] < self._keepalive_s
            ):
                continue
            if self.transport.send(row, data):
                self._last_sent[row] = now
            else:
                ok = False
            self._last[row] = data
        self.ok = ok
        if ok:
            self.frames_sent += 1
        else:
            self.frames_failed += 1

    def _run(self) -> None:
        # time.sleep, not Event.wait: a condition variable's timed wait costs several times more per frame,
        # and a stop request waits at most one frame period
        period = self.period_s
        last = self._clock()
        due = started = last
        cpu_start = time.thread_time()
        while not self._stopping:
            now = self._clock()
            try:
                self.tick(now, now - last)
            except Exception as error:  # noqa: BLE001 - the frame clock must outlive any one frame
                self.frames_failed += 1
                LOG.warning("DMX frame failed (%s: %s); carrying on", type(error).__name__, error)
            last = now
            due += period
            if due < now - period:  # fell behind (a stalled machine): start afresh rather than burst
                due = now + period
            time.sleep(max(0.0, due - self._clock()))
            self.cpu_s, self.wall_s = time.thread_time() - cpu_start, self._clock() - started

    def close(self) -> None:
        """Stop the clock, send the stream-terminated packets, close the socket."""
        self._stopping = True
        if self._started:
            self._thread.join(JOIN_TIMEOUT_S)
        self.transport.terminate(self.frame)
        self.transport.close()
        if self.wall_s > 0:
            LOG.info("DMX %s: %d frame(s) sent, %d failed; the frame clock used %.2f %% of a core",
                     self.transport.label, self.frames_sent, self.frames_failed, 100.0 * self.cpu_s / self.wall_s)
