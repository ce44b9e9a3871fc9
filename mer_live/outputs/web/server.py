"""The web server: the dashboard page, its WebSocket, the OSCQuery namespace and its WebSocket, on one
port, with aiohttp on an event loop of its own thread.

aiohttp (Apache-2.0, Python >= 3.10) serves HTTP and WebSocket on one port, which is what OSCQuery
needs (the namespace and its LISTEN stream share the port) and what the page needs; ``websockets``
and ``starlette``/``uvicorn`` would need Python >= 3.11 and a second library for the other half.

Nothing here can delay the analysis: :meth:`WebServer.publish` (called on the web output's lane
thread) only schedules the frame onto the loop. Each client has one pending frame: a client whose
socket does not take the last frame in time finds the next one replacing it (counted as skipped), and
a send that stays blocked for ``SEND_TIMEOUT_S`` closes that client. So a slow or stuck browser loses
frames and then its connection, and holds at most one frame plus aiohttp's bounded write buffer.

Routes (``P`` is the OSC prefix):

* ``/`` -- the dashboard for a browser (``Accept: text/html``), else the OSCQuery root (JSON);
  ``/?HOST_INFO``; a WebSocket upgrade at ``/`` is the OSCQuery stream (LISTEN/IGNORE);
* ``/dashboard`` -- the page; ``/static/NAME`` -- its files, from a fixed table read at start (no file
  system path is ever built from a request, so there is nothing to traverse);
* ``/ws`` -- the dashboard's WebSocket: ``hello``, ``history``, then ``frame`` messages; it takes
  ``control`` messages;
* ``P/...`` -- OSCQuery nodes, with ``?ATTRIBUTE`` queries.

Security: bind to loopback unless told otherwise. Bound to loopback, the ``Host`` header must name
loopback (a DNS-rebinding page gets 403). A WebSocket with an ``Origin`` must come from the page's own
origin. Bound beyond loopback, control needs the token (the read-only view stays open). At most
``max_clients`` WebSockets at once (503 beyond).
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import logging
import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from mer_live.core.addresses import is_loopback
from mer_live.outputs.web import oscquery
from mer_live.outputs.web.discovery import Advertiser

LOG = logging.getLogger("mer_live")

START_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
SEND_TIMEOUT_S = 10.0  # a client whose socket takes no frame for this long is closed
HEARTBEAT_S = 15.0  # WebSocket ping interval; a client that does not answer is closed
MAX_INCOMING_BYTES = 4096  # control messages and LISTEN commands are small
WRITER_LIMIT_BYTES = 64 * 1024  # aiohttp's per-client write buffer before a send waits
STATIC_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
THREAD_NAME = "mer-live-web"

ControlHandler = Callable[[str, list[Any]], "str | None"]  # (command, arguments) -> error text or None


async def _call(function: Callable[[], None]) -> None:
    function()


class WebError(OSError):
    """The web server could not start (one line for the user)."""


def load_static() -> dict[str, tuple[bytes, str]]:
    """The page's files (package data), by name, with their content types."""
    folder = resources.files(__package__).joinpath("static")
    return {name: (folder.joinpath(name).read_bytes(), kind) for name, kind in STATIC_FILES.items()}


@dataclass
class Frame:
    """One reading for the clients: the dashboard's JSON text, the OSC datagrams by address (for
    OSCQuery LISTEN), and the short history entry (JSON) or None for a heartbeat."""

    text: str
    osc: dict[str, bytes]
    history: str | None


@dataclass(eq=False)
class _Client:
    socket: web.WebSocketResponse
    dashboard: bool
    transport: asyncio.Transport | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pending: Frame | None = None
    listening: set[str] = field(default_factory=set)
    skipped: int = 0


@dataclass(frozen=True)
class ServerOptions:
    """How the server listens and whom it obeys."""

    host: str
    port: int
    token: str  # "" = control without a token (loopback binds only)
    max_clients: int
    history_entries: int
    prefix: str
    mdns: bool
    name: str = "mer-live"


class WebServer:
    """Serves on ``options.host:options.port`` from a thread of its own; raises :class:`WebError` when
    it cannot listen. ``hello``: what the page is told on connecting (labels, controls, info). Until
    :meth:`attach` the page cannot control, and nothing is announced over mDNS."""

    def __init__(self, *, options: ServerOptions, hello: dict[str, Any]) -> None:
        self.options = options
        self._hello = hello
        self._control: ControlHandler | None = None
        self._control_port: tuple[str, int] | None = None
        self._static = load_static()
        self._namespace = oscquery.tree(prefix=options.prefix, controls=[])
        self._clients: set[_Client] = set()
        self._history: collections.deque[str] = collections.deque(maxlen=options.history_entries)
        self._latest: Frame | None = None
        self._advertiser: Advertiser | None = None
        self.skipped = 0  # frames replaced before a client took them, over all clients
        self.refused = 0  # connections refused (limit, origin, host, token)
        self.port = options.port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=THREAD_NAME, daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=START_TIMEOUT_S)
        except BaseException as error:
            self._stop_loop()
            if isinstance(error, OSError):
                where = f"{options.host}:{options.port}"
                raise WebError(
                    f"web port {where}: cannot listen ({error.strerror or error}); pass --web [HOST:]PORT with a free port"
                ) from error
            raise

    # ----------------------------------------------------------------------------- lifecycle

    async def _start(self) -> None:
        app = web.Application(client_max_size=MAX_INCOMING_BYTES, middlewares=[self._guard])
        app.router.add_get("/ws", self._dashboard_socket)
        app.router.add_get("/dashboard", self._page)
        app.router.add_get("/static/{name}", self._static_file)
        app.router.add_get("/{path:.*}", self._namespace_or_page)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host=self.options.host, port=self.options.port, reuse_address=False)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        self.port = int(site._server.sockets[0].getsockname()[1])  # the bound port (port 0 picks one)

    def _start_discovery(self) -> None:
        from mer_live.outputs.web.discovery import Service, available

        if not available():
            LOG.warning("web: mDNS discovery needs the zeroconf package (Python >= 3.11); the dashboard and OSCQuery still serve")
            return
        services = [Service(kind="_oscjson._tcp.local.", port=self.port, properties={"txtvers": "1"})]
        if self._control_port is not None:
            services.append(Service(kind="_osc._udp.local.", port=self._control_port[1], properties={"txtvers": "1"}))
        self._advertiser = Advertiser(name=self.options.name, host=self.options.host, services=services)
        self._discovery = self._loop.create_task(self._advertiser.start())

    async def _stop(self) -> None:
        if self._advertiser is not None:
            self._discovery.cancel()
            await self._advertiser.close()
        for client in list(self._clients):
            await client.socket.close()
        await self._runner.cleanup()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CLOSE_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    def close(self) -> None:
        """Withdraw the mDNS services, close every client and stop the thread (bounded)."""
        if self._loop.is_closed() or not self._loop.is_running():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=CLOSE_TIMEOUT_S)
        except Exception as error:  # noqa: BLE001 - shutting down: report, carry on
            LOG.warning("web: closing took too long or failed (%s)", type(error).__name__)
        self._stop_loop()

    def attach(self, *, control: ControlHandler | None, control_port: tuple[str, int] | None) -> None:
        """Once the daemon's worker and control port exist: the control code path (None: read-only),
        and the control port's bound address (HOST_INFO's OSC_IP/OSC_PORT, the writable nodes, and the
        ``_osc._udp`` announcement; None without a control port). Starts the mDNS announcement."""
        def apply() -> None:
            self._control = control
            self._control_port = control_port
            writable = self._hello["controls"] if control_port is not None else []
            self._namespace = oscquery.tree(prefix=self.options.prefix, controls=writable)
            if self.options.mdns and self._advertiser is None:
                self._start_discovery()

        asyncio.run_coroutine_threadsafe(_call(apply), self._loop).result(timeout=START_TIMEOUT_S)

    @property
    def clients(self) -> int:
        return len(self._clients)

    @property
    def listeners(self) -> int:
        """OSCQuery clients listening to at least one address."""
        return sum(1 for client in self._clients if client.listening)

    @property
    def advertised(self) -> list[str]:
        return list(self._advertiser.registered) if self._advertiser is not None else []

    # ------------------------------------------------------------------------------ frames

    def publish(self, *, frame: Frame) -> bool:
        """Hand ``frame`` to the clients (any thread; never blocks); False once the server has stopped."""
        try:
            self._loop.call_soon_threadsafe(self._deliver, frame)
        except RuntimeError:  # the loop is closed
            return False
        return True

    def _deliver(self, frame: Frame) -> None:
        self._latest = frame
        if frame.history is not None:
            self._history.append(frame.history)
        for client in self._clients:
            if client.pending is not None:
                client.skipped += 1
                self.skipped += 1
            client.pending = frame
            client.wake.set()

    async def _send_frames(self, client: _Client) -> None:
        """The client's sender: the latest pending frame each time it wakes."""
        while not client.socket.closed:
            await client.wake.wait()
            client.wake.clear()
            frame, client.pending = client.pending, None
            if frame is None:
                continue
            try:
                await asyncio.wait_for(self._send(client=client, frame=frame), SEND_TIMEOUT_S)
            except asyncio.TimeoutError:
                LOG.info("web: a client took no frame for %.0f s; closing it", SEND_TIMEOUT_S)
                if client.transport is not None:
                    client.transport.abort()
                return
            except (ConnectionError, RuntimeError):  # closed while sending
                return

    async def _send(self, *, client: _Client, frame: Frame) -> None:
        if client.dashboard:
            await client.socket.send_str(frame.text)
            return
        for address in client.listening:
            datagram = frame.osc.get(address)
            if datagram is not None:
                await client.socket.send_bytes(datagram)

    # ------------------------------------------------------------------------------ checks

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        """Loopback binds answer loopback host names only (no DNS rebinding)."""
        if is_loopback(host=self.options.host):
            hostname = urlsplit("//" + request.host).hostname or ""
            if not is_loopback(host=hostname):
                self.refused += 1
                return web.Response(status=403, text="this server answers to localhost only\n")
        return await handler(request)

    def _refuse_socket(self, request: web.Request) -> web.Response | None:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            self.refused += 1
            return web.Response(status=403, text=f"WebSocket from origin {origin[:80]} refused: open the page from this server\n")
        if len(self._clients) >= self.options.max_clients:
            self.refused += 1
            return web.Response(status=503, text=f"too many clients (at most {self.options.max_clients})\n")
        return None

    def token_ok(self, *, token: object) -> bool:
        if not self.options.token:
            return True
        return isinstance(token, str) and hmac.compare_digest(token.encode(), self.options.token.encode())

    # ----------------------------------------------------------------------------- routes

    async def _page(self, request: web.Request) -> web.Response:
        body, kind = self._static["index.html"]
        return web.Response(body=body, content_type=kind, headers={"Cache-Control": "no-store"})

    async def _static_file(self, request: web.Request) -> web.Response:
        found = self._static.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404, text="not found\n")
        body, kind = found
        return web.Response(body=body, content_type=kind, charset="utf-8", headers={"Cache-Control": "no-store"})

    async def _namespace_or_page(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        if path == "/" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._oscquery_socket(request)
        if path == "/" and not request.query_string and "text/html" in request.headers.get("Accept", ""):
            return await self._page(request)
        if "HOST_INFO" in request.query:
            return web.json_response(self.host_info())
        node = oscquery.find(root=self._namespace, path=path)
        if node is None:
            return web.json_response({"error": f"no such OSC address {path[:80]}"}, status=404)
        if request.query_string:
            attribute = request.query_string.split("&", 1)[0].split("=", 1)[0]
            if attribute not in oscquery.ATTRIBUTES:
                return web.json_response({"error": f"unknown attribute {attribute[:40]}"}, status=400)
            if attribute not in node:
                return web.Response(status=204)
            return web.json_response({attribute: node[attribute]})
        return web.json_response(node)

    def host_info(self) -> dict[str, Any]:
        control = self._control_port
        info = oscquery.HostInfo(
            name=self.options.name,
            osc_ip=control[0] if control else None,
            osc_port=control[1] if control else None,
            extensions=oscquery.extensions(listen=True),
        )
        return info.as_json()

    async def _open(self, request: web.Request, *, dashboard: bool) -> tuple[web.WebSocketResponse | web.Response, _Client | None]:
        refusal = self._refuse_socket(request)
        if refusal is not None:
            return refusal, None
        socket = web.WebSocketResponse(
            heartbeat=HEARTBEAT_S, max_msg_size=MAX_INCOMING_BYTES, compress=False, writer_limit=WRITER_LIMIT_BYTES,
        )
        await socket.prepare(request)
        client = _Client(socket=socket, dashboard=dashboard, transport=request.transport)
        self._clients.add(client)
        return socket, client

    async def _dashboard_socket(self, request: web.Request) -> web.StreamResponse:
        socket, client = await self._open(request, dashboard=True)
        if client is None:
            return socket
        try:
            hello = dict(self._hello, type="hello", can_control=self._control is not None, control_needs_token=bool(self.options.token))
            await socket.send_str(json.dumps(hello))
            await socket.send_str('{"type":"history","entries":[' + ",".join(self._history) + "]}")
            client.pending = self._latest
            client.wake.set()
            sender = asyncio.ensure_future(self._send_frames(client))
            try:
                async for message in socket:
                    if message.type == WSMsgType.TEXT:
                        await socket.send_str(json.dumps(await self._control_message(text=message.data)))
            finally:
                sender.cancel()
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            self._clients.discard(client)
        return socket

    async def _control_message(self, *, text: str) -> dict[str, Any]:
        """One ``{"type": "control", "command", "value", "token", "id"}`` message -> the reply."""
        try:
            message = json.loads(text)
        except ValueError:
            return {"type": "control_result", "ok": False, "message": "not JSON"}
        if not isinstance(message, dict) or message.get("type") != "control":
            return {"type": "control_result", "ok": False, "message": "expected a control message"}
        reply = {"type": "control_result", "id": message.get("id"), "command": message.get("command")}
        if self._control is None:
            return dict(reply, ok=False, message="control is off ([web] read_only)")
        if not self.token_ok(token=message.get("token")):
            return dict(reply, ok=False, message="control needs the token (printed at start, or [web] token)")
        value = message.get("value")
        arguments = [] if value is None else [value]
        error = await asyncio.get_running_loop().run_in_executor(None, self._control, str(message.get("command")), arguments)
        return dict(reply, ok=error is None, message=error or "applied")

    async def _oscquery_socket(self, request: web.Request) -> web.StreamResponse:
        """OSCQuery's WebSocket: ``{"COMMAND": "LISTEN"|"IGNORE", "DATA": path}``; then every reading's
        datagram for each listened path, as a binary message."""
        socket, client = await self._open(request, dashboard=False)
        if client is None:
            return socket
        sender = asyncio.ensure_future(self._send_frames(client))
        try:
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    command = json.loads(message.data)
                    verb, path = command["COMMAND"], command["DATA"]
                except (ValueError, KeyError, TypeError):
                    continue
                if not isinstance(path, str) or oscquery.find(root=self._namespace, path=path) is None:
                    continue
                if verb == "LISTEN":
                    client.listening.add(path)
                elif verb == "IGNORE":
                    client.listening.discard(path)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            sender.cancel()
            self._clients.discard(client)
        return socket
