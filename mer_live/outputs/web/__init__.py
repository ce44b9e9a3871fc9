"""The web output: a browser dashboard, the OSCQuery namespace and mDNS discovery (``--web [HOST:]PORT``).

* :mod:`.sink`: the output-stage sink that turns readings into frames;
* :mod:`.server`: aiohttp on its own thread and event loop (page, WebSockets, OSCQuery over HTTP);
* :mod:`.oscquery`: the namespace, generated from the OSC address table and the live settings;
* :mod:`.discovery`: ``_oscjson._tcp`` and ``_osc._udp`` over mDNS with python-zeroconf;
* ``static/``: the page (HTML, JS, CSS), package data: nothing comes from a CDN.

aiohttp and zeroconf are the ``web`` extra (``pip install 'mer-live[web]'``); they are imported only
when the web output is on. See docs/guide/web.md.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass

from mer_live.core.addresses import is_loopback, parse_host_port_or_zero
from mer_live.core.exit_codes import UsageError
from mer_live.core.fields import setting
from mer_live.outputs.base import Sink, SinkContext
from mer_live.outputs.registry import OutputSpec

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9002
MAX_CLIENTS_RANGE = (1, 1000)
HISTORY_RANGE_S = (10.0, 3600.0)
TOKEN_BYTES = 12  # secrets.token_urlsafe: 16 characters
WILDCARD_HOSTS = ("0.0.0.0", "::")
INSTALL_HINT = "pip install 'mer-live[web]'"


def parse_listen(spec: str) -> tuple[str, int]:
    """``"[HOST:]PORT"`` -> ``(host, port)``; the host defaults to ``DEFAULT_HOST``, port 0 picks a free one."""
    text = str(spec).strip()
    if text.isdigit():
        text = f"{DEFAULT_HOST}:{text}"
    return parse_host_port_or_zero(spec=text, what="--web")


def _listen_ok(value: str) -> None:
    parse_listen(value)


@dataclass(frozen=True)
class WebSettings:
    """``[web]``: the browser dashboard, OSCQuery and mDNS (docs/guide/web.md)."""

    enabled: bool = setting(False, help="no web dashboard", negative_flag="--no-web")
    listen: str = setting(
        f"{DEFAULT_HOST}:{DEFAULT_PORT}", help="serve the dashboard and OSCQuery on [HOST:]PORT (host default "
        f"{DEFAULT_HOST}; 0.0.0.0 for the network, then control needs the token); turns it on",
        flag="--web", metavar="[HOST:]PORT", check=_listen_ok, enables=True,
    )
    token: str = setting("", help="the token that control from the network needs; \"\" = a new one each start, printed")
    max_clients: int = setting(64, help="most WebSocket clients at once", bounds=MAX_CLIENTS_RANGE)
    history_s: float = setting(300.0, help="seconds of history a page gets when it opens", bounds=HISTORY_RANGE_S)
    mdns: bool = setting(True, help="announce _oscjson._tcp and _osc._udp over mDNS (loopback binds: on loopback only)")
    read_only: bool = setting(False, help="no control from the page, whatever the bind")


def _source(*, settings: object) -> str:
    inputs = settings.input
    if inputs.demo:
        return "demo piece"
    if inputs.file:
        return f"file {inputs.file}"
    return f"device {inputs.device}" if inputs.device else "default input device"


def make_sinks(settings: WebSettings, *, context: SinkContext) -> list[Sink]:
    """The web output (one sink) when ``--web`` is on; prints where it serves, and the control token when
    it is bound beyond loopback. A taken port or a missing extra is a :class:`UsageError` (one line, exit 2)."""
    if not settings.enabled:
        return []
    try:
        import aiohttp  # noqa: F401 - only checked here: the web process imports it
    except ImportError as error:
        raise UsageError(f"--web needs aiohttp: {INSTALL_HINT}") from error
    from mer_live.outputs.web.server import WebError
    from mer_live.outputs.web.sink import WebSink

    host, port = parse_listen(settings.listen)
    token = "" if is_loopback(host=host) else (settings.token or secrets.token_urlsafe(TOKEN_BYTES))
    try:
        sink = WebSink(
            host=host, port=port, token=token, max_clients=settings.max_clients, history_s=settings.history_s,
            mdns=settings.mdns, prefix=context.settings.osc.prefix, live=context.live, read_only=settings.read_only,
            source=_source(settings=context.settings),
        )
    except WebError as error:
        raise UsageError(str(error)) from error
    shown = socket.gethostname() if host in WILDCARD_HOSTS else f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sink.port}/"  # a wildcard bind is reached through the machine's name
    line = f"mer-live: web dashboard and OSCQuery on {url}"
    if token and not settings.read_only:
        line += f" (control token {token}: open {url}#token={token})"
    context.stderr.write(line + "\n")  # always shown, even with -q: with port 0 this is the only way to learn the port
    return [sink]


def describe(settings: WebSettings) -> list[str]:
    return [f"web {settings.listen}"] if settings.enabled else []


OUTPUT = OutputSpec(name="web", settings=WebSettings, make=make_sinks, describe=describe, order=110)
