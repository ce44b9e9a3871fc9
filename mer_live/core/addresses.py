"""Network addresses as the user writes them: ``HOST:PORT`` specs, OSC address prefixes and the
networks allowed on the control port (``--control-allow``).

A leaf module (standard library only), so that settings can be validated without loading a sink.
"""

from __future__ import annotations

import ipaddress

MAX_PORT = 65535
ANY_PORT = 0  # a listener's port 0: the system picks a free one
DEFAULT_PREFIX = "/mer"  # the OSC address prefix of the outputs and the control port


class OscSpecError(ValueError):
    """A ``HOST:PORT`` spec that cannot be parsed."""


def parse_host_port(*, spec: str, what: str = "--osc") -> tuple[str, int]:
    """``"HOST:PORT"`` (IPv6 as ``"[::1]:PORT"``) -> ``(host, port)``; raises :class:`OscSpecError`."""
    text = str(spec).strip()
    if text.startswith("[") and text.endswith("]"):  # "[::1]": a bracketed IPv6 host without its port
        raise OscSpecError(f"{what} {spec!r}: no port; add it, e.g. {text}:9000")
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text:
        raise OscSpecError(f"{what} {spec!r}: expected HOST:PORT, e.g. 127.0.0.1:9000")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise OscSpecError(f"{what} {spec!r}: write an IPv6 host in brackets, e.g. [::1]:9000")
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) <= MAX_PORT:
        raise OscSpecError(f"{what} {spec!r}: port must be a number from 1 to {MAX_PORT}")
    if not host or any(c.isspace() for c in host):
        raise OscSpecError(f"{what} {spec!r}: bad host name")
    try:
        host.encode("idna")  # what getaddrinfo does: an empty or over-long label ("a..b") fails here
    except UnicodeError as error:
        raise OscSpecError(f"{what} {spec!r}: bad host name ({error})") from error
    return host, int(port_text)


def check_prefix(*, prefix: str) -> str:
    """An OSC prefix: starts with '/', no spaces, no trailing '/' (``"/mer"``). Raises ValueError."""
    if not prefix.startswith("/") or len(prefix) < 2 or prefix.endswith("/") or any(
        c.isspace() or c in "#*,?[]{}" for c in prefix
    ):
        raise ValueError(f"OSC prefix {prefix!r} must look like /mer (a leading '/', no spaces or OSC wildcards)")
    return prefix


def parse_host_port_or_zero(*, spec: str, what: str = "--control") -> tuple[str, int]:
    """Like :func:`parse_host_port` but port 0 (any free port) is allowed, for a listener."""
    text = str(spec).strip()
    if text.endswith(f":{ANY_PORT}"):
        host, _ = parse_host_port(spec=text[:-2] + ":1", what=what)
        return host, ANY_PORT
    return parse_host_port(spec=text, what=what)


def parse_networks(*, specs: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``["192.168.1.0/24", "10.0.0.7"]`` -> networks; raises ValueError naming a bad one."""
    networks = []
    for spec in specs:
        try:
            networks.append(ipaddress.ip_network(str(spec).strip(), strict=False))
        except ValueError as error:
            raise ValueError(f"{spec!r} is not an address or network in CIDR form, e.g. 192.168.1.0/24 ({error})") from error
    return tuple(networks)


def is_loopback(*, host: str) -> bool:
    """Whether the bind address (or host name) ``host`` is reachable from this machine only; IPv6 may be
    written in brackets."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
