"""Test helpers for the control port: a recording ControlTarget and a real UDP OSC client."""

from __future__ import annotations

import socket
import threading
import time

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

REPLY_TIMEOUT_S = 2.0
INITIAL_SMOOTHING_S = 2.0
INITIAL_RATE_HZ = 4.0
INITIAL_FOLLOW = 1280.0
INITIAL_STILL_SPEED = 0.0625  # exact in float32, as OSC sends it
INITIAL_CHANGE = 0.25


class RecordingTarget:
    """A ControlTarget that keeps its settings and records every call (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.smoothing = INITIAL_SMOOTHING_S
        self.rate = INITIAL_RATE_HZ
        self.follow = INITIAL_FOLLOW
        self.still_speed = INITIAL_STILL_SPEED
        self.change = INITIAL_CHANGE
        self.muted = False
        self.resets = 0
        self.calls: list[tuple[str, object]] = []

    def set_setting(self, *, key: str, value: float) -> None:
        with self._lock:
            self.calls.append((f"set_{key}", value))
            setattr(self, key, value)

    def reset_smoothing(self) -> None:
        with self._lock:
            self.calls.append(("reset_smoothing", None))
            self.resets += 1

    def set_muted(self, *, muted: bool) -> None:
        with self._lock:
            self.calls.append(("set_muted", muted))
            self.muted = muted

    def current_config(self) -> dict[str, float | int | str | bool]:
        with self._lock:
            return {
                "smoothing": self.smoothing,
                "follow": self.follow,
                "still_speed": self.still_speed,
                "change": self.change,
                "rate": self.rate,
                "muted": self.muted,
                "prefix": "/mer",
                "resets": self.resets,
            }

    def snapshot(self) -> tuple[float, float, bool, int]:
        with self._lock:
            return self.smoothing, self.rate, self.muted, self.resets


def build_message(address: str, *args: object) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def build_bundle(*datagrams: bytes) -> bytes:
    bundle = OscBundleBuilder(IMMEDIATELY)
    for datagram in datagrams:
        bundle.add_content(OscMessage(datagram))
    return bundle.build().dgram


class ControlClient:
    """A real UDP socket that sends OSC to the control port and reads the replies."""

    def __init__(self, *, port: int, host: str = "127.0.0.1") -> None:
        self.address = (host, port)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(REPLY_TIMEOUT_S)

    def send(self, datagram: bytes) -> None:
        self.socket.sendto(datagram, self.address)

    def receive(self) -> list[OscMessage]:
        """The messages of the next datagram that arrives (raises socket.timeout if none)."""
        datagram, _ = self.socket.recvfrom(65_535)
        return [timed.message for timed in OscPacket(datagram).messages]

    def ping(self, ping_id: object, *, prefix: str = "/mer") -> float:
        """Round trip ``ping_id``; returns the round-trip time in seconds. Skips stale replies."""
        started = time.perf_counter()
        self.send(build_message(f"{prefix}/ping", ping_id))
        while True:
            for message in self.receive():
                if message.address == f"{prefix}/pong" and message.params == [ping_id]:
                    return time.perf_counter() - started

    def wait_until_up(self, *, timeout: float = 15.0, prefix: str = "/mer") -> None:
        """Ping every 0.2 s until the server answers (e.g. while the daemon loads its model)."""
        deadline = time.monotonic() + timeout
        self.socket.settimeout(0.2)
        try:
            while True:
                try:
                    self.ping("up", prefix=prefix)
                    return
                except socket.timeout:
                    if time.monotonic() > deadline:
                        raise
        finally:
            self.socket.settimeout(REPLY_TIMEOUT_S)

    def close(self) -> None:
        self.socket.close()
