"""Readings as OSC over UDP: the address space of ``docs/guide/osc.md``, as one bundle or separate messages.

A :class:`Reading` is what the worker hands to every sink once per update (and, as a status-only
heartbeat, at least once per second when there is no update). Values are in the 0-1 sent units of
:mod:`mer_live.core.labels`. No sink ever stops or delays the daemon: send errors and unresolvable hosts
are logged (rate-limited) and the daemon carries on. No sink blocks either: sockets are non-blocking, and
host names are resolved on a background thread. What a sink cannot deliver it drops and counts
(``delivered`` / ``dropped``, in updates); the daemon runs every sink on its own thread behind a bounded
queue (:mod:`mer_live.outputs.base`).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass


from mer_live.core import osc, osc_addresses
from mer_live.core.exit_codes import UsageError
from mer_live.core.addresses import DEFAULT_PREFIX, check_prefix, parse_host_port
from mer_live.core.fields import ConfigError, setting
from mer_live.core.rate_limit import RateLimitedLog
from mer_live.core.reading import Reading
from mer_live.outputs.base import DELAY_RANGE_MS, LOG_INTERVAL_S, MS_PER_S, SinkContext
from mer_live.outputs.registry import OutputSpec

LOG = logging.getLogger("mer_live")

RESOLVE_RETRY_S = 5.0  # after a failed lookup ends, try again this much later
STARTUP_RESOLVE_S = 1.0  # at start, host names get this long to say they do not exist (then: background)
# answers that say a host name does not exist (not "try again later"): at start, a one-line error
NAME_UNKNOWN = tuple(getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name))
OSC_FORMAT_BUNDLE = "bundle"
OSC_FORMAT_MESSAGES = "messages"
OSC_FORMATS = (OSC_FORMAT_BUNDLE, OSC_FORMAT_MESSAGES)


def _prefix_ok(value: str) -> None:
    check_prefix(prefix=value)


def _osc_target_ok(value: str) -> None:
    parse_host_port(spec=value, what="--osc (osc.targets)")


@dataclass(frozen=True)
class OscSettings:
    """``[osc]``: the OSC output."""

    enabled: bool = setting(True, help="send no OSC", negative_flag="--no-osc")
    targets: tuple[str, ...] = setting(
        ("127.0.0.1:9000",), help="OSC target, repeatable; turns OSC on even if --config turns it off",
        flag="--osc", metavar="HOST:PORT", append=True, check=_osc_target_ok, enables=True,
    )
    prefix: str = setting(DEFAULT_PREFIX, help="OSC address prefix", flag="--osc-prefix", metavar="PREFIX", check=_prefix_ok)
    format: str = setting(
        OSC_FORMAT_BUNDLE, help="one bundle per update or plain messages", flag="--osc-format", choices=OSC_FORMATS
    )
    delay_ms: float = setting(
        0.0, help="delay OSC by this much (to line it up with video, lights or another output)", flag="--osc-delay",
        metavar="MS", bounds=DELAY_RANGE_MS,
    )


# ----------------------------------------------------------------------------------------------- OSC


def osc_messages(*, reading: Reading, prefix: str) -> list[tuple[str, list[float | int | str]]]:
    """The ``(address, arguments)`` pairs of one reading, in sending order (see docs/guide/osc.md): from the
    one table of sent addresses, :data:`mer_live.core.osc_addresses.ADDRESSES`."""
    return osc_addresses.messages(reading=reading, prefix=prefix)


def osc_packets(*, reading: Reading, prefix: str, fmt: str) -> list[bytes]:
    """The datagrams of one reading: one bundle (immediate time tag) or one datagram per message."""
    messages = [osc.message(address=address, arguments=arguments) for address, arguments in osc_messages(reading=reading, prefix=prefix)]
    if fmt == OSC_FORMAT_MESSAGES:
        return messages
    return [osc.bundle(messages=messages)]


class _UdpTarget:
    """One receiver, with a non-blocking socket. A numeric host is used as is; a host name is looked
    up on a background thread (again ``RESOLVE_RETRY_S`` after a failed lookup has ended), so a slow
    resolver never delays a send. Updates that cannot go (not resolved yet, send error, full socket
    buffer) are dropped and counted."""

    def __init__(self, *, host: str, port: int, log: RateLimitedLog, start_check: bool = False) -> None:
        self.host = host
        self._start_check = start_check  # the caller reports a name that does not exist (start_problem)
        self.port = port
        self._log = log
        self._lock = threading.Lock()
        self._resolved: tuple[socket.socket, tuple] | None = None
        self._resolver: threading.Thread | None = None
        self._next_resolve = 0.0
        self._closed = False
        self._first_lookup = threading.Event()
        self._unknown = False
        self.delivered = 0
        self.dropped = 0
        self.problem = ""  # why updates could not go, last time (for the log)
        numeric = self._lookup(flags=socket.AI_NUMERICHOST)
        if numeric is not None:
            self._resolved = numeric
            self._first_lookup.set()
        else:
            self.problem = f"resolving {self.host}"
            self._resolve_in_background()

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    def _lookup(self, *, flags: int = 0) -> tuple[socket.socket, tuple] | None:
        """``getaddrinfo`` and a socket for the first answer; None (logged unless numeric-only) if it fails."""
        try:
            family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM, flags=flags)[0]
            sock = socket.socket(family, kind, proto)
        except (OSError, UnicodeError) as error:  # UnicodeError: a host name IDNA cannot encode
            if not flags:
                self._unknown = isinstance(error, UnicodeError) or (
                    isinstance(error, socket.gaierror) and error.errno in NAME_UNKNOWN
                )
                self.problem = f"cannot resolve {self.host} ({error})"
                if self._unknown and self._start_check and not self._first_lookup.is_set():
                    return None  # the start-up check says it (one line, exit 2)
                self._log.log(key=f"resolve {self.label}", message=f"OSC target {self.label}: cannot resolve/open ({error}); retrying")
            return None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock, address

    def _resolve_in_background(self) -> None:
        with self._lock:
            if self._closed or (self._resolver is not None and self._resolver.is_alive()):
                return
            if time.monotonic() < self._next_resolve:
                return
            self._resolver = threading.Thread(target=self._resolve, name=f"mer-live-resolve {self.label}", daemon=True)
            self._resolver.start()

    def _resolve(self) -> None:
        found = self._lookup()
        with self._lock:
            if found is not None and not self._closed:
                self._resolved, found = found, None
                self._unknown, self.problem = False, ""
            else:
                self._next_resolve = time.monotonic() + RESOLVE_RETRY_S  # taken after the lookup ended
        self._first_lookup.set()
        if found is not None:  # closed meanwhile
            found[0].close()

    def start_problem(self, *, timeout_s: float) -> str | None:
        """Wait at most ``timeout_s`` for the first lookup; why the target cannot work when the name does
        not exist (a typo: the user's to fix), else None (resolved, or slow: then it goes on in the
        background)."""
        self._first_lookup.wait(max(0.0, timeout_s))
        return self.problem if self._unknown else None

    def send(self, *, packets: list[bytes], count: bool) -> None:
        """Send the datagrams of one reading; ``count``: it is an update (counted delivered/dropped)."""
        resolved = self._resolved
        if resolved is None:
            self._resolve_in_background()
            self.dropped += int(count)
            return
        sock, address = resolved
        try:
            for packet in packets:
                sock.sendto(packet, address)
        except OSError as error:  # BlockingIOError: the socket buffer is full
            self.dropped += int(count)
            self.problem = f"send to {self.label} failed ({error})"
            self._log.log(key=f"send {self.label}", message=f"OSC send to {self.label} failed ({error}); dropped, carrying on")
            return
        self.delivered += int(count)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            resolved, self._resolved = self._resolved, None
        if resolved is not None:
            resolved[0].close()


class OscSink:
    """Sends each reading to every target as one OSC bundle (or plain messages), never blocking.

    ``start_check``: the caller asks :meth:`start_problem` at start and reports a host name that does not
    exist itself (the first failed lookup is then not logged too).
    """

    def __init__(
        self, *, targets: list[tuple[str, int]], prefix: str = DEFAULT_PREFIX, fmt: str = OSC_FORMAT_BUNDLE,
        start_check: bool = False,
    ) -> None:
        if fmt not in OSC_FORMATS:
            raise ValueError(f"OSC format {fmt!r}: use one of {', '.join(OSC_FORMATS)}")
        self.prefix = check_prefix(prefix=prefix)
        self.fmt = fmt
        self._log = RateLimitedLog(logger=LOG, window_s=LOG_INTERVAL_S)
        self._targets = [_UdpTarget(host=host, port=port, log=self._log, start_check=start_check) for host, port in targets]
        self.name = "OSC " + " ".join(target.label for target in self._targets)

    @property
    def delivered(self) -> int:
        """Updates sent (to every target: summed over the targets)."""
        return sum(target.delivered for target in self._targets)

    @property
    def dropped(self) -> int:
        """Updates not sent (summed over the targets)."""
        return sum(target.dropped for target in self._targets)

    @property
    def problem(self) -> str:
        """Why updates could not go to some target, last time ("" when they all went)."""
        return "; ".join(target.problem for target in self._targets if target.problem)

    def start_problem(self, *, timeout_s: float) -> str | None:
        """The first target whose host name does not exist (see :meth:`_UdpTarget.start_problem`)."""
        deadline = time.monotonic() + timeout_s
        for target in self._targets:
            problem = target.start_problem(timeout_s=deadline - time.monotonic())
            if problem:
                return f"{target.label}: {problem}"
        return None

    def process(self, *, reading: Reading) -> None:
        packets = osc_packets(reading=reading, prefix=self.prefix, fmt=self.fmt)
        for target in self._targets:
            target.send(packets=packets, count=reading.is_update)

    def close(self) -> None:
        for target in self._targets:
            target.close()


def make_sinks(settings: OscSettings, *, context: SinkContext) -> list[OscSink]:
    """One sink (one lane) per target, so that no target waits for another; none when OSC is off. A host
    name that does not exist is a :class:`UsageError` (its lookups get ``STARTUP_RESOLVE_S``, side by
    side; a resolver that is only slow carries on in the background)."""
    if not settings.enabled:
        return []
    sinks = [
        OscSink(targets=[parse_host_port(spec=target)], prefix=settings.prefix, fmt=settings.format, start_check=True)
        for target in settings.targets
    ]
    for sink in sinks:
        sink.delay_s = settings.delay_ms / MS_PER_S  # the lane holds each reading back this long
    deadline = time.monotonic() + STARTUP_RESOLVE_S
    for sink in sinks:
        problem = sink.start_problem(timeout_s=deadline - time.monotonic())
        if problem:
            for made in sinks:
                made.close()
            raise UsageError(f"--osc {problem}; check the host name, or give its address")
    return sinks


def describe(settings: OscSettings) -> list[str]:
    return [f"OSC {' '.join(settings.targets)} {settings.prefix} ({settings.format})"] if settings.enabled else []


def check(settings: OscSettings) -> None:
    if settings.enabled and not settings.targets:
        raise ConfigError("osc.targets is empty; give at least one HOST:PORT or set osc.enabled = false")


OUTPUT = OutputSpec(name="osc", settings=OscSettings, make=make_sinks, describe=describe, check=check, order=10)
