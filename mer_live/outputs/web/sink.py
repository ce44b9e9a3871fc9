"""The web output's sink in the daemon: hands every reading to the web process (:mod:`.child`), which
serves the dashboard, OSCQuery and mDNS.

The server runs in a process of its own so that serving many browsers never competes with the analysis
for the interpreter lock. ``process`` runs on this sink's own lane thread (:mod:`mer_live.output`) and
only sends the reading down a pipe. If the web process falls behind, the pipe fills and this lane waits,
its bounded queue drops the oldest readings (counted), and the analysis and the other outputs carry on;
inside the web process each client holds one pending frame (see :mod:`.server`). Control requests from
a page come back on a second pipe and are applied by a thread here, through the daemon's control path.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import threading
from dataclasses import asdict, is_dataclass
from typing import Any, Callable, Sequence

from mer_live.core import labels
from mer_live.core.rate_limit import RateLimitedLog
from mer_live.outputs.web import child
from mer_live.outputs.web.server import ServerOptions, WebError

LOG = logging.getLogger("mer_live")

START_METHOD = "spawn"  # the same on Linux, macOS and Windows; nothing of the daemon's state is inherited
START_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.2
MAX_HISTORY_RATE_HZ = 30.0  # the top update rate: sizes the history buffer
PROCESS_NAME = "mer-live-web"


MUTE_VALUES = (0, 1)
RESET_HELP = "clear the smoothing state"
MUTE_HELP = "1 stops sending values (the status heartbeat continues), 0 resumes"


def controls(*, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The controls the page shows and the OSCQuery namespace lists as writable: every live setting
    (``fields``: their declarations, limits and help from the settings), then ``reset`` and ``mute``,
    as the control port takes them."""
    out = []
    for key, field in fields.items():
        low, high = field.metadata["bounds"] or (None, None)
        unit = field.metadata.get("unit")
        out.append({"name": key, "types": "f", "min": low, "max": high,
                    "help": field.metadata["help"] + (f" ({unit})" if unit else "")})
    out.append({"name": "reset", "types": "", "min": None, "max": None, "help": RESET_HELP})
    out.append({"name": "mute", "types": "i", "min": MUTE_VALUES[0], "max": MUTE_VALUES[1], "help": MUTE_HELP})
    return out


def _one_number(*, command: str, arguments: list[Any]) -> float:
    """The single finite number in ``arguments`` (not a bool), else ValueError naming ``command``."""
    if len(arguments) != 1 or isinstance(arguments[0], bool) or not isinstance(arguments[0], (int, float)):
        raise ValueError(f"{command} takes one number")
    value = float(arguments[0])
    if not math.isfinite(value):
        raise ValueError(f"{command} got a non-finite value")
    return value


def _plain(count: object) -> dict[str, Any]:
    return asdict(count) if is_dataclass(count) else dict(vars(count))


class WebSink:
    """Serves the dashboard, OSCQuery and mDNS for the daemon (see :mod:`mer_live.outputs.web`).

    Starts the web process and waits until it listens (raises
    :class:`~mer_live.outputs.web.server.WebError` when it cannot); :meth:`attach` completes it once the
    worker and the control port exist. ``prefix``: the OSC prefix; ``history_s``: how much history a new
    page gets; ``token``: what control needs ("" = nothing, for loopback binds).

    ``live``: the daemon's live settings (:class:`~mer_live.outputs.base.LiveHandle`), None for a view
    without control. Once the analysis runs (the handle is bound), the first reading tells the web
    process the control port's address and the status it shows, and control from the page goes to
    the handle: ``set_setting`` (checked against the same declarations as the control port),
    ``reset_smoothing`` and ``set_muted``, the calls the control port makes. ``source``: the input, for
    the status line.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        token: str = "",
        max_clients: int = 64,
        history_s: float = 300.0,
        mdns: bool = True,
        prefix: str = "/mer",
        name: str = "mer-live",
        live: Any = None,
        read_only: bool = False,
        source: str = "",
    ) -> None:
        self.prefix = prefix
        self._live = live
        self._controllable = live is not None and not read_only
        self._source = source
        self._attached = False
        self._counts: Callable[[], Sequence[object]] | None = None
        self._changes = RateLimitedLog(logger=LOG, level=logging.INFO, prefix="web: ")
        self._closing = threading.Event()
        self._control_thread: threading.Thread | None = None
        self.name = f"web {host}:{port}"
        self._broken = False
        self.delivered = 0
        self.dropped = 0
        hello = {
            "emotions": list(labels.EMOTIONS), "mids": list(labels.MID_LEVELS), "controls": controls(fields=live.fields) if live is not None else [],
            "history_s": history_s, "info": {},
        }
        options = ServerOptions(
            host=host, port=port, token=token, max_clients=max_clients,
            history_entries=max(1, int(history_s * MAX_HISTORY_RATE_HZ)), prefix=prefix, mdns=mdns, name=name,
        )
        context = multiprocessing.get_context(START_METHOD)
        frames_in, self._frames = context.Pipe(duplex=False)
        self._requests, requests_child = context.Pipe()
        self._process = context.Process(
            target=child.serve, name=PROCESS_NAME, daemon=True,
            kwargs={"options": options, "hello": hello, "frames": frames_in, "control": requests_child},
        )
        self._process.start()
        frames_in.close()  # the child has its own ends now: closing ours lets each side see the other's end
        requests_child.close()
        if not self._requests.poll(START_TIMEOUT_S):
            self._stop_process()
            raise WebError(f"web server on {host}:{port} did not start within {START_TIMEOUT_S:.0f} s")
        try:
            kind, value = self._requests.recv()
        except EOFError:
            kind, value = "error", f"web server on {host}:{port} stopped while starting"
        if kind == "error":
            self._stop_process()
            raise WebError(value)
        self.port = int(value)
        self.name = f"web {host}:{self.port}"

    def watch(self, *, counts: Callable[[], Sequence[object]]) -> None:
        """Show every output's counters (the output stage's ``counts``) in the status."""
        self._counts = counts

    def _attach(self, *, config: dict[str, Any]) -> None:
        """On the first reading with the analysis running: tell the web process the control port's address
        (HOST_INFO, ``_osc._udp``), whether the page may control, and the status it shows; start the mDNS
        announcement and the thread that applies the pages' control requests."""
        self._attached = True
        info = {"source": self._source, "model": config.get("model"), "version": config.get("version")}
        control_port = getattr(self._live, "control_address", None)
        self._send(message=("attach", self._controllable, control_port, info))
        if self._controllable:
            self._control_thread = threading.Thread(target=self._serve_control, name=f"{PROCESS_NAME} control", daemon=True)
            self._control_thread.start()

    def apply(self, command: str, arguments: list[Any]) -> str | None:
        """One control request from a page; returns None when applied, else the reason (one line)."""
        live = self._live
        try:
            if command in live.fields:
                value = _one_number(command=command, arguments=arguments)
                live.set_setting(key=command, value=value)
                self._changes.log(key="change", message=f"{command} set to {value:g} from the page")
            elif command == "reset" and not arguments:
                live.reset_smoothing()
                self._changes.log(key="change", message="smoothing state cleared from the page")
            elif command == "mute" and len(arguments) == 1 and arguments[0] in MUTE_VALUES and not isinstance(arguments[0], bool):
                live.set_muted(muted=bool(arguments[0]))
                self._changes.log(key="change", message=("muted" if arguments[0] else "unmuted") + " from the page")
            else:
                return f"{str(command)[:40]!r} is not a control, or its value is not 0 or 1"
        except (ValueError, KeyError, RuntimeError) as error:  # ConfigError is a ValueError: out of range
            return str(error).strip("'\"")
        return None

    def _serve_control(self) -> None:
        """Apply the pages' control requests (from the web process) through the daemon's control path."""
        while not self._closing.is_set():
            try:
                if not self._requests.poll(POLL_INTERVAL_S):
                    continue
                command, arguments = self._requests.recv()
            except (EOFError, OSError):
                return
            try:
                answer = self.apply(str(command), list(arguments))
            except Exception as error:  # noqa: BLE001 - a page's request must not end the control thread
                answer = f"{type(error).__name__}: {error}"
            try:
                self._requests.send(answer)
            except OSError:
                return

    def _send(self, *, message: tuple) -> bool:
        if self._broken:
            return False
        try:
            self._frames.send(message)
        except (OSError, ValueError) as error:  # the web process has gone
            self._broken = True
            LOG.warning("web: the web process has stopped (%s); the dashboard is gone, everything else carries on", error)
            return False
        return True

    def process(self, *, reading: Any) -> None:
        config = self._live.current_config() if self._live is not None else None
        if config and not self._attached:
            self._attach(config=config)
        outputs = [_plain(count) for count in self._counts()] if self._counts is not None else None
        if self._send(message=("reading", reading, config, outputs)):
            self.delivered += int(reading.is_update)
        else:
            self.dropped += int(reading.is_update)

    def _stop_process(self) -> None:
        self._process.join(CLOSE_TIMEOUT_S)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(CLOSE_TIMEOUT_S)

    def close(self) -> None:
        """Stop the web process (it withdraws its mDNS services) and the control thread (bounded)."""
        self._closing.set()
        self._frames.close()  # the web process sees the end and stops
        self._stop_process()
        if self._control_thread is not None:
            self._control_thread.join(CLOSE_TIMEOUT_S)
        self._requests.close()
