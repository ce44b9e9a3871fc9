"""The web process: runs the :class:`~mer_live.outputs.web.server.WebServer` apart from the daemon, so that
the work of serving many browsers (encoding, sending, TLS-less but Python all the same) never takes the
daemon's interpreter lock from the analysis.

The daemon's :class:`~mer_live.outputs.web.sink.WebSink` starts :func:`serve` in a child process (spawn)
and talks to it over two pipes:

* ``frames`` (daemon -> here): ``("reading", reading, config, outputs)`` per reading, ``("attach",
  control, control_port, info)`` once; its end (EOF) stops this process, so it never outlives the daemon;
* ``control`` (both ways): ``("ready", port)`` or ``("error", message)`` at start; then each control
  request from a page, ``(command, arguments)``, answered by the daemon with the error text or None.
"""

from __future__ import annotations

import logging
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from mer_live.outputs.web import frames as frame_builder
from mer_live.outputs.web.server import ServerOptions, WebError, WebServer

LOG = logging.getLogger("mer_live")

CONTROL_TIMEOUT_S = 5.0  # a page's control request waits at most this long for the daemon's answer


class RemoteControl:
    """The control handler in the web process: forwards a request to the daemon and waits for its answer."""

    def __init__(self, *, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def __call__(self, command: str, arguments: list[Any]) -> str | None:
        with self._lock:
            try:
                self._connection.send((command, arguments))
                if not self._connection.poll(CONTROL_TIMEOUT_S):
                    return f"the daemon did not answer within {CONTROL_TIMEOUT_S:.0f} s"
                return self._connection.recv()
            except (EOFError, OSError):
                return "the daemon has stopped"


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mer-live: %(message)s"))
    LOG.handlers[:] = [handler]
    LOG.propagate = False
    LOG.setLevel(logging.WARNING)


def serve(*, options: ServerOptions, hello: dict[str, Any], frames: Connection, control: Connection) -> None:
    """The web process's main: serve until the daemon closes ``frames``."""
    _log_to_stderr()
    try:
        server = WebServer(options=options, hello=hello)
    except WebError as error:
        control.send(("error", str(error)))
        return
    control.send(("ready", server.port))
    try:
        while True:
            try:
                message = frames.recv()
            except (EOFError, OSError):
                return
            if message[0] == "reading":
                _, reading, config, outputs = message
                server.publish(frame=frame_builder.build(
                    reading=reading, config=config, outputs=outputs, clients=server.clients, skipped=server.skipped,
                    prefix=options.prefix, listened=server.listeners > 0,
                ))
            elif message[0] == "attach":
                _, controllable, control_port, info = message
                hello["info"] = info
                server.attach(control=RemoteControl(connection=control) if controllable else None, control_port=control_port)
    finally:
        server.close()
