"""mDNS / DNS-SD advertising with python-zeroconf: ``_oscjson._tcp`` (the OSCQuery namespace and the
dashboard, on the web port) and ``_osc._udp`` (the control port, where a discovering tool sends OSC).

zeroconf (LGPL-2.1) is used unmodified, as an installed library; it needs Python >= 3.11, so on 3.10
discovery is off with a one-line note and the dashboard still runs. Registration (about 1.5 s of
probing) runs as a task on the web server's event loop, so it never delays the start of the daemon.

Where a bind reaches: bound to loopback, the services are announced on the loopback interface only,
with 127.0.0.1, so tools on the same machine find them and the network does not; bound to one address,
on that interface with that address; bound to 0.0.0.0, on every interface with the machine's IPv4
addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass

LOG = logging.getLogger("mer_live")

OSCJSON_TYPE = "_oscjson._tcp.local."
OSC_TYPE = "_osc._udp.local."
WILDCARD_HOSTS = ("0.0.0.0", "", "::")
CLOSE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Service:
    """One service to announce: its DNS-SD type, port and TXT properties."""

    kind: str
    port: int
    properties: dict[str, str]


def available() -> bool:
    """Whether python-zeroconf can be imported (it needs Python >= 3.11)."""
    try:
        import zeroconf  # noqa: F401
    except ImportError:
        return False
    return True


def _interfaces_and_addresses(*, host: str) -> tuple[object, list[str]]:
    from zeroconf import InterfaceChoice
    import ifaddr

    if host in WILDCARD_HOSTS:
        addresses = [
            ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
            if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback
        ]
        return InterfaceChoice.All, addresses or ["127.0.0.1"]
    if host == "localhost":
        host = "127.0.0.1"
    address = socket.gethostbyname(host)
    return [address], [address]


class Advertiser:
    """Announces ``services`` as ``name`` on the event loop it is started on; :meth:`close` withdraws them."""

    def __init__(self, *, name: str, host: str, services: list[Service]) -> None:
        self._name = name
        self._host = host
        self._services = services
        self._zeroconf = None
        self.registered: list[str] = []

    async def start(self) -> None:
        from zeroconf import ServiceInfo
        from zeroconf.asyncio import AsyncZeroconf

        try:
            interfaces, addresses = _interfaces_and_addresses(host=self._host)
            self._zeroconf = AsyncZeroconf(interfaces=interfaces)
            server = socket.gethostname().split(".")[0] + ".local."
            infos = [
                ServiceInfo(
                    service.kind, f"{self._name}.{service.kind}", port=service.port, properties=service.properties,
                    addresses=[socket.inet_aton(a) for a in addresses], server=server,
                )
                for service in self._services
            ]
            waiters = [await self._zeroconf.async_register_service(info, allow_name_change=True) for info in infos]
            await asyncio.gather(*waiters)  # the probes of both services run at once
            self.registered.extend(info.name for info in infos)
        except Exception as error:  # noqa: BLE001 - discovery is a convenience: never stop the daemon for it
            LOG.warning("web: mDNS announcement failed (%s: %s); the dashboard and OSCQuery still serve", type(error).__name__, error)

    async def close(self) -> None:
        if self._zeroconf is None:
            return
        try:
            await self._zeroconf.async_unregister_all_services()
            await self._zeroconf.async_close()
        except Exception as error:  # noqa: BLE001 - shutting down: report, carry on
            LOG.warning("web: mDNS withdrawal failed (%s)", error)
        self._zeroconf = None
