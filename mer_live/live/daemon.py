"""The live daemon: ``mer-live [options]``.

Builds the pipeline from the settings (CLI > ``--config`` TOML > defaults, see :mod:`mer_live.config.options`):
a source (sound card, ``--input FILE`` or ``--demo``) -> the :class:`~mer_live.live.worker.Worker` ->
sinks (OSC, CSV, the stderr readout), plus the OSC control port (:mod:`mer_live.control.server`).

Every startup problem is one line on stderr naming the problem and the fix, and exit status 2.
SIGINT/SIGTERM/SIGHUP stop the stream, flush the sinks, send a final status and exit 0. The end of an input
file or ``--duration`` ends the run the same way.

When the sound card vanishes (unplugged, the JACK server died), the daemon keeps running: the
capture (:class:`~mer_live.live.source.CaptureSource`, its stream in a child process) sends ``no-input``
heartbeats, looks for the same device every ``RECONNECT_INTERVAL_S`` and carries on when it is back,
in the same process, with the same sockets, counters and control port; the analysis warms up again
from the fresh audio.

:class:`Pipeline` holds the running parts; one :class:`contextlib.ExitStack` closes whatever was built
if startup fails, and :meth:`Pipeline.run` shuts down in order and returns an explicit :class:`Outcome`.
"""

from __future__ import annotations

import os

# One BLAS thread. The per-update matrix products are small; with more, OpenBLAS's idle threads
# spin between updates and burn about a quarter of a core for nothing (benchmarks/daemon_cpu.py).
# It must be set before numpy is first imported, which is why it comes before the other imports.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import contextlib
import logging
import math
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from mer_live import __version__
from mer_live.config import options, toml_text
from mer_live.core.addresses import parse_host_port_or_zero
from mer_live.core.command import ArgumentParser, run_command
from mer_live.core.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError
from mer_live.model.emotion_model import EmotionModel, ModelError, check_joint_layer
from mer_live.outputs import registry
from mer_live.outputs.base import LiveHandle, NonBlockingWriter, Output, SinkContext
from mer_live.config.settings import CHANNEL_MIX, Settings, live_settings
from mer_live.live.devices import SourceError, list_devices
from mer_live.live.source import CaptureSource, FileSource, demo_source
from mer_live.live.worker import STOP_TIMEOUT_S, Worker

LOG = logging.getLogger("mer_live")

WAIT_S = 0.1
MS_PER_S = 1000.0
# what a terminal or a service manager sends to end a run; each ends it cleanly, with its final status
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


DESCRIPTION = "Real-time music emotion recognition: audio in, 8 emotions and 7 mid-level features out as OSC/CSV."
EPILOG = (
    "Settings also come from --config: a TOML file, or a built-in preset by name (mer-live presets lists them); "
    "the command line wins. --print-config shows every setting."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The daemon's options: ``--version``, ``--config``, ``-l``, and one per setting (:mod:`mer_live.config.options`)."""
    parser.add_argument("--version", action="version", version=f"mer-live {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file, or a built-in preset by name, e.g. maxmsp (see: mer-live presets)")
    parser.add_argument(
        "--print-config", action="store_true",
        help="print every setting as TOML (the defaults, then --config, then the command line) and exit",
    )
    groups = options.add_arguments(parser)
    groups["input"].add_argument("-l", "--list-devices", action="store_true", help="list audio devices and exit")


def build_parser() -> argparse.ArgumentParser:
    """The daemon's parser alone (``mer-live`` without a subcommand; :func:`mer_live.cli.build_parser` is the whole CLI)."""
    parser = ArgumentParser(prog="mer-live", description=DESCRIPTION, epilog=EPILOG)
    add_arguments(parser)
    return parser


_STDERR: NonBlockingWriter | None = None  # the log's and the readout's stderr, for one run()


def _stderr() -> TextIO:
    return _STDERR if _STDERR is not None else sys.stderr


def _setup_logging(*, quiet: bool) -> None:
    global _STDERR
    _STDERR = NonBlockingWriter(stream=sys.stderr)  # a stderr nobody reads must not block who logs
    handler = logging.StreamHandler(_STDERR)
    handler.setFormatter(logging.Formatter("mer-live: %(message)s"))
    LOG.handlers[:] = [handler]
    LOG.propagate = False
    LOG.setLevel(logging.WARNING if quiet else logging.INFO)


def check_applicable(*, settings: Settings, cli: dict[str, dict[str, Any]]) -> None:
    """Refuse settings that the chosen input would silently ignore (raises :class:`UsageError`).

    ``samplerate`` and ``device`` only apply to a sound card, ``fast`` only to a file or the demo, and
    ``channel`` not to the (mono) demo. A TOML value that
    does not apply is allowed only when the command line chose the input (a card's config file used
    for a quick ``--demo``); on the command line, or with the input chosen in the same file, it is an error.
    """
    inputs = settings.input
    given = cli.get("input", {})
    plays = bool(inputs.file) or bool(inputs.demo)
    chosen_on_cli = bool(given.keys() & ({"file", "demo"} if plays else {"device"}))
    if plays and inputs.samplerate and ("samplerate" in given or not chosen_on_cli):
        name = "--samplerate" if "samplerate" in given else "input.samplerate"
        raise UsageError(
            f"{name} {inputs.samplerate} only applies to a sound card; --input FILE and --demo play at their own rate "
            f"(resampled internally): drop {name}"
        )
    if plays and inputs.device != "" and ("device" in given or not chosen_on_cli):
        name = "--device" if "device" in given else "input.device"
        source = "--demo" if inputs.demo else "--input FILE"
        raise UsageError(f"{name} {inputs.device!r} does not apply to {source}, which reads no sound card: drop one of them")
    if inputs.demo and inputs.channel != CHANNEL_MIX and ("channel" in given or not chosen_on_cli):
        name = "--channel" if "channel" in given else "input.channel"
        raise UsageError(f"{name} {inputs.channel} does not apply to --demo, which is mono: drop {name}")
    if not plays and inputs.fast and ("fast" in given or not chosen_on_cli):
        name = "--fast" if "fast" in given else "input.fast"
        raise UsageError(f"{name} only applies to --input FILE or --demo; a sound card always runs in real time: drop {name}")


def _make_source(*, settings: Settings):
    inputs = settings.input
    channel = None if inputs.channel == CHANNEL_MIX else inputs.channel
    if inputs.demo:
        return demo_source(fast=inputs.fast)
    if inputs.file:
        return FileSource(path=inputs.file, channel=channel, fast=inputs.fast)
    return CaptureSource(device=inputs.device, channel=channel, samplerate=inputs.samplerate)


def _make_control(*, settings: Settings, worker: Worker):
    if not settings.control.enabled:
        return None
    from mer_live.control.server import ControlServer
    from mer_live.core.addresses import is_loopback

    spec = settings.control.listen
    allow = list(settings.control.allow)
    host, port = parse_host_port_or_zero(spec=spec)
    try:
        server = ControlServer(host=host, port=port, target=worker, prefix=settings.osc.prefix, allow=allow)
    except OSError as error:
        raise UsageError(
            f"control port {spec}: cannot listen ({error.strerror or error}); "
            "pass --control HOST:PORT with a free port, or --no-control"
        ) from error
    bound = f"[{host}]:{server.port}" if ":" in host else f"{host}:{server.port}"
    # always shown, even with -q: with port 0 this is the only way to learn the port
    _stderr().write(f"mer-live: control port listening on {bound}\n")
    if not is_loopback(host=host):
        LOG.warning(
            "warning: the control port %s is reachable from other machines; it obeys loopback and %s only "
            "(widen with --control-allow CIDR)",
            bound,
            ", ".join(allow) if allow else "no other address",
        )
    return server


def run(args: argparse.Namespace) -> int:
    """The daemon with the parsed ``args``; returns the exit status, raises :class:`UsageError` for startup problems."""
    if args.list_devices:
        try:
            print(list_devices())
            from mer_live.outputs.midi import list_outputs

            print(list_outputs())
        except SourceError as error:  # PortAudio missing
            raise UsageError(str(error)) from error
        return EXIT_OK
    try:
        cli = options.given_on_command_line(args=args)
        settings = options.resolve(toml_path=args.config, cli=cli)
    except options.ConfigError as error:
        raise UsageError(str(error)) from error
    if args.print_config:
        print(toml_text.render(settings), end="")
        return EXIT_OK
    check_applicable(settings=settings, cli=cli)
    settings = registry.resolve(settings=settings, cli=cli)  # e.g. a MIDI port named on the command line
    _setup_logging(quiet=settings.log.quiet)
    try:
        return _run_logged(settings=settings)
    finally:
        _close_stderr()


def _close_stderr() -> None:
    """Write out what the log queued (unless stderr is stuck: then it is left) and stop its thread."""
    global _STDERR
    if _STDERR is not None:
        _STDERR.close()
        _STDERR = None


def _run_logged(*, settings: Settings) -> int:
    """The pipeline, under the stop signals."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:  # noqa: ARG001 (signal's signature)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in STOP_SIGNALS}
    try:
        with Pipeline(settings=settings) as pipeline:
            outcome = pipeline.run(stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return outcome.code


@dataclass(frozen=True)
class Outcome:
    """How a run ended: the exit status and why."""

    code: int
    reason: str


FINISHED = Outcome(code=EXIT_OK, reason="stopped by a signal, or the input ended")
INPUT_FAILED = Outcome(code=EXIT_USAGE, reason="the input stopped decoding partway")  # bad input: the user's to fix
ANALYSIS_FAILED = Outcome(code=EXIT_FAILURE, reason="the analysis thread failed")
STUCK = Outcome(code=EXIT_FAILURE, reason="the analysis thread did not stop")


class Pipeline:
    """The daemon's running parts, built from the settings: model, source, sinks, worker, control port.

    Entering builds them in that order, each one's ``close`` going onto one :class:`contextlib.ExitStack`
    as soon as it exists, so that a startup error (:class:`UsageError`) leaks no stream, socket or file.
    :meth:`run` runs until a stop or the end of the input and shuts down in order (the stream first, then
    the analysis thread, then a final status and the sinks); leaving closes whatever is still open.
    """

    def __init__(self, *, settings: Settings) -> None:
        self._settings = settings
        self._stack = contextlib.ExitStack()
        self._worker: Worker | None = None
        self._control = None

    def __enter__(self) -> Pipeline:
        try:
            self._build()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _close_model(self) -> None:
        if self._worker is None or not self._worker.alive:  # a thread that never stopped may still be in it
            self._model.close()

    def _build(self) -> None:
        settings, analysis = self._settings, self._settings.analysis
        try:
            self._model = EmotionModel(path=analysis.model or None, threads=analysis.threads)
            self._stack.callback(self._close_model)
            check_joint_layer(model=self._model)
        except ModelError as error:
            raise UsageError(str(error)) from error
        if self._model.pooling is None and (analysis.follow > 0.0 or analysis.change > 0.0):
            # the adaptive smoothing's defaults were tuned on v2 (benchmarks/responsiveness.py --tune); v1's
            # 10 s window moves slower than the still speed, so they hold it back (README: Responsiveness)
            LOG.warning("warning: the smoothing settings (change %g, follow %g, %g s while still) were tuned for v2; "
                        "with a v1 model use --smoothing 1 --follow 0 --change 0", analysis.change, analysis.follow,
                        analysis.smoothing)
        try:
            self._source = _make_source(settings=settings)
        except SourceError as error:
            raise UsageError(str(error)) from error
        self._stack.callback(self._source.close)
        with contextlib.ExitStack() as sinks_stack:  # only once the model and the input are good
            live = LiveHandle(fields={key: field for key, (_, field) in live_settings().items()})
            sinks = _make_sinks(settings=settings, stack=sinks_stack, live=live)
            output = Output(sinks=sinks)  # from here on the output stage closes them, each on its own thread
            for sink in sinks:
                if hasattr(sink, "watch"):  # the meter shows every output's delivered/dropped counts
                    sink.watch(counts=output.counts)
            sinks_stack.pop_all()
            sinks_stack.callback(output.close)
            self._worker = Worker(
                source=self._source,
                model=self._model,
                sinks=[output],
                rate=analysis.rate,
                smoothing_s=analysis.smoothing,
                follow=analysis.follow,
                still_speed=analysis.still_speed,
                change=analysis.change,
                silence_dbfs=analysis.silence_dbfs,
                duration_s=settings.input.duration,
            )
            sinks_stack.pop_all()  # from here on the worker closes it (and only once its thread has ended)
        self._stack.callback(self._worker.close)
        self._control = _make_control(settings=settings, worker=self._worker)
        if self._control is not None:
            self._stack.callback(self._control.close)
            self._control.start()
        live.bind(self._worker, control_address=self._control.address if self._control is not None else None)

    def run(self, *, stop: threading.Event) -> Outcome:
        """Start, wait for ``stop`` or the end of the input, shut down; returns the :class:`Outcome`."""
        source, worker, analysis = self._source, self._worker, self._settings.analysis
        try:
            source.start()
        except SourceError as error:
            raise UsageError(str(error)) from error
        worker.start()
        LOG.info(
            "version %s: %s at %g Hz -> %s; %g updates/s, model %s",
            __version__,
            _describe_source(settings=self._settings, source=source),
            source.samplerate,
            ", ".join(registry.describe(settings=self._settings)) or "no outputs",
            analysis.rate,
            self._model.variant,
        )
        while not stop.is_set() and not worker.finished.is_set():
            stop.wait(WAIT_S)
        return self._shut_down()

    def _shut_down(self) -> Outcome:
        source, worker = self._source, self._worker
        source.close()  # stop the stream first
        stopped = worker.stop()
        if self._control is not None:
            self._control.close()
        if stopped:
            worker.final_status()
            worker.close()  # closes (flushes) the sinks
            self._model.close()
        else:  # sending or closing now would race the stuck thread: leave the outputs and model to the exit
            LOG.error("the analysis thread did not stop within %.0f s; no final status sent, outputs left to the exit", STOP_TIMEOUT_S)
        self._stack.pop_all()  # everything is closed now, or left to the exit
        source_error = getattr(source, "error", None)
        if source_error:
            LOG.error("%s", source_error)
        timings = np.asarray(worker.compute_times_s, dtype=np.float64) * MS_PER_S
        p50, p99 = (np.percentile(timings, [50, 99]) if len(timings) else (math.nan, math.nan))
        LOG.info(
            "stopped: %d updates, %.1f s of audio, %d overflow(s); compute per update p50 %.1f ms, p99 %.1f ms",
            worker.updates,
            worker.stream_time_s,
            source.overflows,
            p50,
            p99,
        )
        if not stopped:
            return STUCK
        if source_error:
            return INPUT_FAILED
        return ANALYSIS_FAILED if worker.error else FINISHED


def _make_sinks(*, settings: Settings, stack: contextlib.ExitStack, live: LiveHandle) -> list:
    """Every enabled output's sinks (:mod:`mer_live.outputs.registry`); each one's ``close`` goes onto
    ``stack`` as soon as it exists. ``live`` gives them the live settings once the worker exists."""
    context = SinkContext(settings=settings, stderr=_stderr(), live=live)
    return registry.make_sinks(settings=settings, context=context, stack=stack)


def _describe_source(*, settings: Settings, source: object) -> str:
    inputs = settings.input
    pace = " (fast)" if inputs.fast else " (real time)"
    if inputs.demo:
        return "demo piece" + pace
    if inputs.file:
        return f"file {inputs.file}" + pace
    device = getattr(source, "device", {})
    return f"device {device.get('index')}: {device.get('name')!r}"


def main(argv: list[str] | None = None) -> int:
    """The daemon alone (``mer-live`` without a subcommand); returns the exit status (2 for any startup
    problem). :func:`mer_live.cli.main` is the whole command line."""
    return run_command(parser=build_parser(), run=run, argv=list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
