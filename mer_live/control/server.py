"""The OSC control port: ask the running daemon whether it is alive and adjust it during a show.

A :class:`ControlServer` owns one UDP socket (loopback by default) and serves it on a daemon
thread with a short receive timeout, so :meth:`ControlServer.close` returns promptly. Every
datagram is parsed with python-osc (:class:`pythonosc.osc_packet.OscPacket`); a bundle's
messages are handled in timetag order. Addresses, under the prefix ``P`` (default ``/mer``):

* ``P/ping [id]`` -> ``P/pong [id]`` sent back to the sender (``id``: one int, float or string);
* ``P/<key> f`` -- a live setting (declared ``setting(..., live=True)``, see
  :func:`mer_live.config.settings.live_settings`): ``rate`` (updates per second), ``smoothing`` (the
  time constant in seconds while the music holds still), ``follow`` (how fast the smoothing lets go
  when the music changes), ``still_speed`` (the mid-level speed below which the music counts as
  holding still) and ``change`` (the emotion move, 0-1 units, that counts as a change in the music),
  each within the limits of its ``[analysis]`` field;
* ``P/reset`` -- clear the smoothing state;
* ``P/mute i`` -- 1 stops sending values (the status heartbeat continues), 0 resumes;
* ``P/query`` -> one bundle back to the sender holding ``P/config/<key> <value>`` per key of
  :meth:`ControlTarget.current_config` (booleans are sent as int 0/1, which every receiver reads).

Numbers may arrive as OSC ``i``, ``h``, ``f`` or ``d`` (Pd and Max send floats, some tools ints);
``P/mute`` also takes ``T``/``F``. Anything else -- undecodable bytes, unknown addresses, wrong
types or counts, out-of-range or non-finite values -- is logged (rate-limited) and ignored.

A packet is applied all or nothing: every message in it is checked first, and if one is bad the
whole packet is dropped, so a bundle like ``[P/smoothing 2, P/rate 999]`` never leaves the
worker half-configured. Each accepted setting is handed to the target in one thread-safe call.

Hardening, since anyone who can reach the port (and spoof a sender address) can send to it:

* every argument must fill exactly the bytes its type tag says (python-osc pads a truncated
  argument, so ``/mer/rate ,f`` with 3 bytes of float would otherwise be read as a number);
* a bundle may hold at most ``MAX_BUNDLE_MESSAGES`` messages (counting nested ones), else it is
  rejected whole;
* a packet gets at most one ``query`` reply, however many queries it holds;
* replies to other machines (``pong``, the ``query`` bundle) are limited per peer address,
  ``REPLY_BURST`` at once and ``REPLIES_PER_S`` after that, and to ``MAX_REPLIES_PER_S`` in all, so
  the port cannot be used to amplify traffic toward a spoofed address. Loopback peers are not
  limited: a loopback source address cannot be spoofed from another machine (Linux drops such
  packets), and local tools may ping as often as they like;
* accepted changes are logged at most ``LOG_BURST`` times per ``LOG_WINDOW_S`` (then summarised);
* only peers in ``allow`` are obeyed (default: loopback only), which matters when the port is bound
  to a wider address such as ``0.0.0.0``; other peers are ignored, counted and logged (rate-limited).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol, Union

from pythonosc.osc_message import OscMessage
from pythonosc.osc_packet import OscPacket
from pythonosc.parsing import osc_types

from mer_live.core import osc
from mer_live.core.addresses import check_prefix, parse_networks
from mer_live.core.rate_limit import RateLimitedLog
from mer_live.config.settings import check_value, live_settings
from mer_live.core.addresses import DEFAULT_PREFIX
from mer_live.core.fields import ConfigError

LOGGER = logging.getLogger(__name__)

MAX_DATAGRAM_BYTES = 65_535
POLL_INTERVAL_S = 0.1  # receive timeout: how quickly close() is noticed
CLOSE_TIMEOUT_S = 2.0
LOG_BURST = 5  # at most this many rejection messages ...
LOG_WINDOW_S = 10.0  # ... per this many seconds; the rest are counted and summarised

ConfigValue = Union[float, int, str, bool]
PingId = Union[int, float, str]

_CONFIG_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")
_MUTE_VALUES = (0, 1)
_LIVE = live_settings()  # {key: (section, field)}: each live setting is the command of its name
_SETTING_COMMANDS = tuple(_LIVE)
COMMANDS = ("ping", *_SETTING_COMMANDS, "reset", "mute", "query")
THREAD_NAME = "mer-live-control"
KNOWN_TYPE_TAGS = frozenset("ihfdsbrmtTFN[]")  # what python-osc decodes; anything else is rejected
_PYTHON_OSC_PACKAGE = "pythonosc"
_BUNDLE_HEADER = b"#bundle\x00"
_TIMETAG_BYTES = 8
_SIZE_BYTES = 4
MAX_BUNDLE_DEPTH = 8  # bundles nested deeper than this are refused (python-osc recurses per level)
MAX_BUNDLE_MESSAGES = 32  # more messages than this in one datagram: rejected whole
REPLY_BURST = 20  # replies another machine may get at once ...
REPLIES_PER_S = 10.0  # ... and per second after that
MAX_REPLIES_PER_S = 100.0  # all other machines together (spoofed senders may come from many addresses)
MAX_TRACKED_PEERS = 1024  # reply budgets kept for this many peers (the least recent are forgotten)
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")
_ARGUMENT_BYTES = {"i": 4, "f": 4, "r": 4, "m": 4, "c": 4, "h": 8, "d": 8, "t": 8}
_NO_DATA_TAGS = frozenset("TFNI[]")
_OSC_ALIGN = 4


class _ReplyBudget:
    """Token buckets: ``REPLY_BURST`` / ``REPLIES_PER_S`` per peer host, ``MAX_REPLIES_PER_S`` in all."""

    def __init__(self, *, clock=time.monotonic) -> None:
        self._clock = clock
        self._peers: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._total = (MAX_REPLIES_PER_S, clock())

    @staticmethod
    def _refill(*, state: tuple[float, float], rate: float, cap: float, now: float) -> float:
        tokens, then = state
        return min(cap, tokens + (now - then) * rate)

    def take(self, *, peer: str) -> bool:
        now = self._clock()
        total = self._refill(state=self._total, rate=MAX_REPLIES_PER_S, cap=MAX_REPLIES_PER_S, now=now)
        own = self._refill(state=self._peers.pop(peer, (REPLY_BURST, now)), rate=REPLIES_PER_S, cap=REPLY_BURST, now=now)
        allowed = total >= 1.0 and own >= 1.0
        if allowed:
            total, own = total - 1.0, own - 1.0
        self._total = (total, now)
        self._peers[peer] = (own, now)
        while len(self._peers) > MAX_TRACKED_PEERS:
            self._peers.popitem(last=False)
        return allowed


class ControlTarget(Protocol):
    """What the control port adjusts; implemented by the daemon's worker. Methods are thread-safe."""

    def set_setting(self, *, key: str, value: float) -> None: ...

    def reset_smoothing(self) -> None: ...

    def set_muted(self, *, muted: bool) -> None: ...

    def current_config(self) -> dict[str, float | int | str | bool]: ...


class _ParserWarningFilter(logging.Filter):
    """python-osc reports some malformed input only as a warning on the root logger (an unknown type
    tag, a bundle element that is neither message nor bundle) and skips that part. On the control
    thread those records are dropped so that no sender can flood the log; the server finds the same
    faults itself (:func:`_bundle_is_well_formed`, :func:`_type_tags`) and rejects the packet."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (threading.current_thread().name == THREAD_NAME and _PYTHON_OSC_PACKAGE in record.pathname)


def _bundle_is_well_formed(*, datagram: bytes, depth: int = 0) -> bool:
    """Whether every element of a bundle (recursively) is a size-prefixed message or bundle that
    fills the datagram exactly; messages are always well formed here (python-osc checks them)."""
    if not datagram.startswith(_BUNDLE_HEADER):
        return datagram.startswith(b"/")
    if depth > MAX_BUNDLE_DEPTH:
        return False
    index = len(_BUNDLE_HEADER) + _TIMETAG_BYTES
    while index < len(datagram):
        if index + _SIZE_BYTES > len(datagram):
            return False
        size = int.from_bytes(datagram[index : index + _SIZE_BYTES], "big", signed=True)
        index += _SIZE_BYTES
        if size <= 0 or index + size > len(datagram):
            return False
        if not _bundle_is_well_formed(datagram=datagram[index : index + size], depth=depth + 1):
            return False
        index += size
    return index == len(datagram)


_PARSER_WARNING_FILTER = _ParserWarningFilter()
_filter_lock = threading.Lock()
_filter_users = 0  # running servers; the filter sits on the root logger while there is one


def _install_parser_warning_filter() -> None:
    global _filter_users
    with _filter_lock:
        _filter_users += 1
        if _filter_users == 1:
            logging.getLogger().addFilter(_PARSER_WARNING_FILTER)


def _remove_parser_warning_filter() -> None:
    global _filter_users
    with _filter_lock:
        _filter_users -= 1
        if _filter_users == 0:
            logging.getLogger().removeFilter(_PARSER_WARNING_FILTER)


def _type_tags(*, message: OscMessage) -> str:
    """The type tag string of ``message`` (without the comma); "" when it has none."""
    _, index = osc_types.get_string(message.dgram, 0)
    if index >= len(message.dgram):
        return ""
    tags, _ = osc_types.get_string(message.dgram, index)
    return tags[1:]


class CommandError(ValueError):
    """A control message that is well-formed OSC but not an acceptable command."""


def _padded_string_end(*, data: bytes, index: int) -> int:
    """Where the NUL-terminated, 4-byte-padded OSC string at ``index`` ends; CommandError if it does not."""
    end = data.find(b"\x00", index)
    if end < 0:
        raise CommandError("an OSC string is not terminated")
    return (end // _OSC_ALIGN + 1) * _OSC_ALIGN


def _check_argument_sizes(*, message: OscMessage) -> None:
    """Every argument must fill exactly the bytes its type tag says, and the message must end there."""
    data = message.dgram
    index = _padded_string_end(data=data, index=0)  # the address
    if index >= len(data):
        if index > len(data):
            raise CommandError("truncated address")
        return  # no type tag string: no arguments
    tags_end = _padded_string_end(data=data, index=index)
    tags = data[index + 1 : data.find(b"\x00", index)].decode("ascii", errors="replace")
    index = tags_end
    for tag in tags:
        if tag in _NO_DATA_TAGS:
            continue
        if tag in _ARGUMENT_BYTES:
            index += _ARGUMENT_BYTES[tag]
        elif tag == "s" or tag == "S":
            index = _padded_string_end(data=data, index=index) if index < len(data) else index + _OSC_ALIGN
        elif tag == "b":
            if index + _SIZE_BYTES > len(data):
                raise CommandError("truncated blob size")
            size = int.from_bytes(data[index : index + _SIZE_BYTES], "big", signed=True)
            if size < 0:
                raise CommandError("negative blob size")
            index += _SIZE_BYTES + -(-size // _OSC_ALIGN) * _OSC_ALIGN
        if index > len(data):
            raise CommandError(f"argument {tag!r} is truncated (the message ends {index - len(data)} byte(s) early)")
    if index != len(data) or len(data) % _OSC_ALIGN:
        raise CommandError(f"{len(data) - index} byte(s) beyond the arguments' type tags")


@dataclass(frozen=True)
class _Command:
    """One validated control message, ready to apply."""

    name: str
    value: float | bool | None = None
    ping_id: tuple[PingId, ...] = ()


def _number(*, params: list[object], address: str) -> float:
    """The single finite number in ``params`` (int or float, not bool), else :class:`CommandError`."""
    if len(params) != 1:
        raise CommandError(f"{address} takes exactly one number, got {len(params)} argument(s)")
    (value,) = params
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CommandError(f"{address} takes a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise CommandError(f"{address} got a non-finite value {number!r}")
    return number


def _setting(*, key: str, value: float, address: str) -> float:
    """``value`` within the limits of the live setting ``key``, else :class:`CommandError`."""
    try:
        return check_value(section=_LIVE[key][0], key=key, value=value)
    except ConfigError as error:
        raise CommandError(f"{address}: {error}") from error


def _mute_flag(*, params: list[object], address: str) -> bool:
    """``1``/``0`` (int or float) or ``T``/``F`` -> bool, else :class:`CommandError`."""
    if len(params) != 1:
        raise CommandError(f"{address} takes exactly one of 0/1, got {len(params)} argument(s)")
    (value,) = params
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in _MUTE_VALUES:
        return bool(value)
    raise CommandError(f"{address} takes 0 or 1, got {value!r}")


def _ping_id(*, params: list[object], address: str) -> tuple[PingId, ...]:
    if not params:
        return ()
    if len(params) == 1:
        (value,) = params
        if isinstance(value, bool):
            raise CommandError(f"{address} id must be an int, float or string, got bool")
        if isinstance(value, (int, float, str)):
            return (value,)
    raise CommandError(f"{address} takes at most one int, float or string id")


def _command(*, name: str, params: list[object], address: str) -> _Command:
    """Validate one message's arguments for command ``name`` (one of :data:`COMMANDS`)."""
    if name == "ping":
        return _Command(name=name, ping_id=_ping_id(params=params, address=address))
    if name in _SETTING_COMMANDS:
        value = _number(params=params, address=address)
        return _Command(name=name, value=_setting(key=name, value=value, address=address))
    if name == "mute":
        return _Command(name=name, value=_mute_flag(params=params, address=address))
    if params:  # reset, query
        raise CommandError(f"{address} takes no arguments, got {len(params)}")
    return _Command(name=name)


def _change_message(*, key: str, value: float) -> str:
    """The log line of an accepted change, e.g. ``rate set to 10 updates/s``."""
    meta = _LIVE[key][1].metadata
    label = meta["label"] or key.replace("_", " ")
    return f"{label} set to {value:g}" + (f" {meta['unit']}" if meta["unit"] else "")


def _wire_value(*, value: ConfigValue) -> int | float | str:
    """A config value as an OSC argument: bools become 0/1 ints (Pd and Max have no T/F)."""
    if isinstance(value, bool):
        return int(value)
    return value


class ControlServer:
    """Serves the control port for ``target`` on ``host:port`` (UDP, OSC)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        target: ControlTarget,
        prefix: str = DEFAULT_PREFIX,
        allow: list[str] | None = None,
    ) -> None:
        """Binds the UDP socket immediately (raises OSError if it cannot).

        ``host``: address to bind; use loopback (the default elsewhere) unless the port must be
        reachable from other machines. ``port``: 0 picks a free port (see :attr:`port`).
        ``prefix``: the OSC address prefix, e.g. ``/mer``. ``allow``: the peers obeyed, as addresses
        or CIDR networks (``["192.168.1.0/24"]``); loopback is always allowed, and None or ``[]``
        allows loopback only. Raises ValueError for a bad prefix or network.
        """
        check_prefix(prefix=prefix)  # the same rule as for the OSC output; raises ValueError
        self._allowed = parse_networks(specs=[*LOOPBACK_NETWORKS, *(allow or [])])
        self._target = target
        self._prefix = prefix
        self._replies = _ReplyBudget()
        self._changes_log = RateLimitedLog(
            logger=LOGGER,
            burst=LOG_BURST,
            window_s=LOG_WINDOW_S,
            level=logging.INFO,
            prefix="control: ",
            summary="{count} more accepted change(s) not logged in the last {window:.0f} s",
        )
        self._log = RateLimitedLog(
            logger=LOGGER,
            burst=LOG_BURST,
            window_s=LOG_WINDOW_S,
            prefix="control: ",
            summary="{count} more rejected packet(s) not shown in the last {window:.0f} s",
        )
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        if not infos:
            raise OSError(f"cannot resolve control host {host!r}")
        family, kind, proto, _, address = infos[0]
        self._socket = socket.socket(family, kind, proto)
        try:
            self._socket.bind(address)
            self._socket.settimeout(POLL_INTERVAL_S)
        except OSError:
            self._socket.close()
            raise
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.packets_handled = 0
        self.packets_rejected = 0
        self.packets_refused = 0  # from peers outside ``allow``
        self.replies_withheld = 0  # over the reply budget

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._socket.getsockname()[1])

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        name = self._socket.getsockname()
        return str(name[0]), int(name[1])

    def start(self) -> None:
        """Serves on a daemon thread until :meth:`close`."""
        if self._closed:
            raise RuntimeError("control server is closed")
        if self._thread is not None:
            return
        _install_parser_warning_filter()  # removed again by close()
        self._thread = threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops the thread and closes the socket. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CLOSE_TIMEOUT_S)
            _remove_parser_warning_filter()
        self._socket.close()

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- serving -----------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, sender = self._socket.recvfrom(MAX_DATAGRAM_BYTES)
            except socket.timeout:
                continue
            except OSError as error:
                if self._stop.is_set():
                    return
                self._log.log(message=f"receive failed: {error}")
                continue
            self.handle_datagram(datagram=datagram, sender=sender)

    def handle_datagram(self, *, datagram: bytes, sender: tuple) -> bool:
        """Parse, validate and apply one datagram from ``sender``; returns whether it was applied.

        Never raises: every problem is logged (rate-limited) and the datagram ignored.
        """
        if not self._is_allowed(sender=sender):
            self.packets_refused += 1
            self._log.log(key="refused", message=f"ignored packet from {_peer(sender=sender)}: not a loopback or --control-allow address")
            return False
        try:
            commands = self._parse(datagram=datagram)
        except CommandError as error:
            self.packets_rejected += 1
            self._log.log(message=f"ignored packet from {_peer(sender=sender)}: {error}")
            return False
        self.packets_handled += 1
        queried = False
        for command in commands:
            if command.name == "query":
                if queried:
                    continue
                queried = True
            self._apply(command=command, sender=sender)
        return True

    def _is_allowed(self, *, sender: tuple) -> bool:
        address = _sender_address(sender=sender)
        return address is not None and any(address.version == net.version and address in net for net in self._allowed)

    def _parse(self, *, datagram: bytes) -> list[_Command]:
        """All commands in ``datagram``, or :class:`CommandError` if any part is unacceptable."""
        if not _bundle_is_well_formed(datagram=datagram):
            raise CommandError("malformed OSC bundle" if datagram.startswith(_BUNDLE_HEADER) else "not OSC")
        try:
            packet = OscPacket(datagram)
            messages: list[OscMessage] = [timed.message for timed in packet.messages]
            tags = "".join(_type_tags(message=message) for message in messages)
        # python-osc raises ParseError for most malformed input, but crafted datagrams can also
        # raise IndexError, OverflowError, RecursionError (deeply nested bundles) and friends;
        # none of them may stop the server.
        except Exception as error:  # noqa: BLE001 - the parser is third-party; see above
            raise CommandError(f"not valid OSC ({type(error).__name__})") from error
        if not messages:
            raise CommandError("empty bundle")
        if len(messages) > MAX_BUNDLE_MESSAGES:
            raise CommandError(f"a bundle of {len(messages)} messages; at most {MAX_BUNDLE_MESSAGES} are accepted")
        for message in messages:
            _check_argument_sizes(message=message)
        unknown = set(tags) - KNOWN_TYPE_TAGS
        if unknown:
            raise CommandError(f"unsupported OSC type tag(s) {''.join(sorted(unknown))!r}")
        commands = []
        for message in messages:
            address = message.address
            head, _, name = address.rpartition("/")
            if head != self._prefix or name not in COMMANDS:
                raise CommandError(f"unknown address {address[:80]!r}")
            commands.append(_command(name=name, params=list(message.params), address=address))
        return commands

    def _apply(self, *, command: _Command, sender: tuple) -> None:
        try:
            if command.name == "ping":
                self._reply(datagram=self._message(name="pong", args=command.ping_id), sender=sender)
            elif command.name in _SETTING_COMMANDS:
                self._target.set_setting(key=command.name, value=float(command.value))
                self._changes_log.log(key="change", message=_change_message(key=command.name, value=float(command.value)))
            elif command.name == "reset":
                self._target.reset_smoothing()
                self._changes_log.log(key="change", message="smoothing state cleared")
            elif command.name == "mute":
                self._target.set_muted(muted=bool(command.value))
                self._changes_log.log(key="change", message="muted" if command.value else "unmuted")
            elif command.name == "query":
                self._reply(datagram=self._config_bundle(), sender=sender)
        # The target belongs to the daemon; whatever it raises is reported, never fatal here.
        except Exception as error:  # noqa: BLE001 - see above
            self._log.log(message=f"{command.name} failed: {type(error).__name__}: {error}")

    def _message(self, *, name: str, args: tuple[PingId, ...]) -> bytes:
        return osc.message(address=f"{self._prefix}/{name}", arguments=args)

    def _config_bundle(self) -> bytes:
        messages = []
        for key, value in sorted(self._target.current_config().items()):
            if not _CONFIG_KEY_PATTERN.match(key):
                raise ValueError(f"config key {key!r} cannot be an OSC address part")
            messages.append(osc.message(address=f"{self._prefix}/config/{key}", arguments=[_wire_value(value=value)]))
        return osc.bundle(messages=messages)

    def _reply(self, *, datagram: bytes, sender: tuple) -> None:
        if not _from_loopback(sender=sender) and not self._replies.take(peer=str(sender[0])):
            self.replies_withheld += 1
            self._log.log(key="budget", message=f"replies to {sender[0]} withheld: more than {REPLIES_PER_S:g} per second")
            return
        try:
            self._socket.sendto(datagram, sender)
        except OSError as error:
            self._log.log(message=f"reply to {_peer(sender=sender)} failed: {error}")


def _sender_address(*, sender: tuple) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(str(sender[0]).split("%", 1)[0])
    except (ValueError, IndexError):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _from_loopback(*, sender: tuple) -> bool:
    address = _sender_address(sender=sender)
    return address is not None and address.is_loopback


def _peer(*, sender: tuple) -> str:
    return f"{sender[0]}:{sender[1]}" if len(sender) >= 2 else str(sender)

