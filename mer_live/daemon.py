"""The live daemon: ``mer-live [options]``.

Builds the pipeline from the settings (CLI > ``--config`` TOML > defaults, see :mod:`mer_live.config`):
a source (sound card, ``--input FILE`` or ``--demo``) -> the :class:`~mer_live.worker.Worker` ->
sinks (OSC, CSV, the stderr readout), plus the OSC control port (:mod:`mer_live.control`).

Every startup problem is one line on stderr naming the problem and the fix, and exit status 2.
SIGINT/SIGTERM stop the stream, flush the sinks, send a final status and exit 0. The end of an input
file or ``--duration`` ends the run the same way.

When the sound card vanishes (unplugged, the JACK server died), the daemon shuts the pipeline down as
for a stop (flushing the sinks, final ``no-input`` status) and restarts itself in place (``exec``,
same process id, same arguments) with the device in ``RESUME_ENV``; the new process sends ``no-input``
heartbeats while it waits for that device, looking for it every ``RECONNECT_INTERVAL_S``, and then
warms up again from fresh audio. A restart is needed because PortAudio cannot let go of a dead JACK
stream (closing it, or terminating PortAudio to rescan devices, blocks for minutes). SIGINT/SIGTERM
stay blocked across the ``exec`` and are handled as soon as the new process is listening for them.
"""

from __future__ import annotations

import os

# One BLAS thread. The per-update matrix products are small; with more, OpenBLAS's idle threads
# spin between updates and burn about a quarter of a core for nothing (benchmarks/daemon_cpu.py).
# It must be set before numpy is first imported, which is why it comes before the other imports.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import logging
import math
import signal
import sys
import threading
from typing import Any, TextIO

import numpy as np

from . import __version__, config
from .addresses import parse_host_port, parse_host_port_or_zero
from .command import ArgumentParser, run_command
from .exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError
from .model import EmotionModel, ModelError, check_joint_layer
from .output import NonBlockingWriter, Output
from .readout import Readout
from .settings import CHANNEL_MIX, Settings
from .sinks import CsvPathError, CsvSink, OscSink
from .source import CaptureSource, FileSource, SourceError, demo_source, list_devices
from .worker import STOP_TIMEOUT_S, Worker

LOG = logging.getLogger("mer_live")

WAIT_S = 0.1
MS_PER_S = 1000.0
RESTART = -1  # _run_pipeline's answer when the input device vanished: restart in place
RESUME_ENV = "MER_LIVE_RESUME"  # JSON CaptureSource.resume_hint() handed to the restarted process
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


DESCRIPTION = "Real-time music emotion recognition: audio in, 8 emotions and 7 mid-level features out as OSC/CSV."
EPILOG = "Settings also come from --config FILE (see configs/default.toml); the command line wins."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The daemon's options: ``--version``, ``--config``, ``-l``, and one per setting (:mod:`mer_live.config`)."""
    parser.add_argument("--version", action="version", version=f"mer-live {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (see configs/default.toml)")
    groups = config.add_arguments(parser)
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


def _resume_hint() -> dict | None:
    """The device a restarted process must wait for (see :data:`RESUME_ENV`), taken out of the
    environment so that nothing started later inherits it."""
    text = os.environ.pop(RESUME_ENV, "")
    if not text:
        return None
    try:
        hint = json.loads(text)
        return {key: hint[key] for key in ("name", "hostapi", "channels", "samplerate")}
    except (ValueError, TypeError, KeyError):
        LOG.warning("ignoring a malformed %s", RESUME_ENV)
        return None


def _make_source(*, settings: Settings):
    inputs = settings.input
    channel = None if inputs.channel == CHANNEL_MIX else inputs.channel
    resume = _resume_hint()
    if inputs.demo:
        return demo_source(fast=inputs.fast)
    if inputs.file:
        return FileSource(path=inputs.file, channel=channel, fast=inputs.fast)
    return CaptureSource(device=inputs.device, channel=channel, samplerate=inputs.samplerate, resume=resume)


def _make_control(*, settings: Settings, worker: Worker):
    if not settings.control.enabled:
        return None
    from .control import ControlServer, is_loopback

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


def run(args: argparse.Namespace, *, argv: list[str]) -> int:
    """The daemon with the parsed ``args`` (``argv``: the same arguments, for a restart in place);
    raises :class:`UsageError` for startup problems."""
    if args.list_devices:
        try:
            print(list_devices())
        except SourceError as error:  # PortAudio missing
            raise UsageError(str(error)) from error
        return EXIT_OK
    try:
        cli = config.given_on_command_line(args=args)
        settings = config.resolve(toml_path=args.config, cli=cli)
    except config.ConfigError as error:
        raise UsageError(str(error)) from error
    check_applicable(settings=settings, cli=cli)
    _setup_logging(quiet=settings.log.quiet)
    try:
        return _run_logged(settings=settings, argv=argv)
    finally:
        _close_stderr()


def _close_stderr() -> None:
    """Write out what the log queued (unless stderr is stuck: then it is left) and stop its thread."""
    global _STDERR
    if _STDERR is not None:
        _STDERR.close()
        _STDERR = None


def _run_logged(*, settings: Settings, argv: list[str]) -> int:
    """The pipeline, under the stop signals; restarts in place when the input device vanished."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:  # noqa: ARG001 (signal's signature)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in STOP_SIGNALS}
    if threading.current_thread() is threading.main_thread():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by a restart in place, see below
    closers: list = []
    code = EXIT_FAILURE
    try:
        code = _run_pipeline(settings=settings, stop=stop, closers=closers)
    except SourceError as error:
        raise UsageError(str(error)) from error
    finally:
        for close in reversed(closers):
            close()
        if code != RESTART:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if code != RESTART:
        return code
    try:
        return _restart_in_place(argv=argv, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _restart_in_place(*, argv: list[str], stop: threading.Event) -> int:
    """``exec`` the daemon again with the same arguments (the pipeline is already shut down and
    ``RESUME_ENV`` is set). Returns only if a stop signal came first, or if ``exec`` failed.

    SIGINT/SIGTERM are blocked first (the mask survives ``exec``; other threads, which could take a
    signal with the default action, do not), so a signal sent meanwhile waits for the new process."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    if stop.is_set():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        os.environ.pop(RESUME_ENV, None)
        return EXIT_OK
    LOG.warning("restarting in place to wait for the input device")
    if _STDERR is not None:
        _STDERR.drain()
    sys.stdout.flush()
    try:
        os.execv(sys.executable, [sys.executable, "-m", "mer_live", *argv])
    except OSError as error:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        LOG.error("cannot restart (%s); start mer-live again when the device is back", error)
        return EXIT_FAILURE
    return EXIT_FAILURE  # pragma: no cover - execv does not return


def _make_sinks(*, settings: Settings, closers: list) -> list:
    """The outputs (OSC, CSV, readout); each one's ``close`` goes into ``closers`` as soon as it exists,
    so that a later startup error leaks no socket or file."""
    sinks: list = []
    if settings.osc.enabled:
        for target in settings.osc.targets:  # one sink (one lane) per target: none waits for another
            host_port = parse_host_port(spec=target)
            sinks.append(OscSink(targets=[host_port], prefix=settings.osc.prefix, fmt=settings.osc.format))
            closers.append(sinks[-1].close)
    if settings.csv.path:
        try:
            sinks.append(CsvSink(path=settings.csv.path))
        except CsvPathError as error:
            raise UsageError(str(error)) from error
        closers.append(sinks[-1].close)
    if not settings.log.quiet:
        sinks.append(Readout(stream=_stderr()))
        closers.append(sinks[-1].close)
    return sinks


def _run_pipeline(*, settings: Settings, stop: threading.Event, closers: list) -> int:
    analysis = settings.analysis
    try:
        model = EmotionModel(path=analysis.model or None, threads=analysis.threads)
        closers.append(model.close)
        check_joint_layer(model=model)
    except ModelError as error:
        raise UsageError(str(error)) from error
    try:
        source = _make_source(settings=settings)
    except SourceError as error:
        raise UsageError(str(error)) from error
    closers.append(source.close)
    sinks = _make_sinks(settings=settings, closers=closers)  # only once the model and the input are good
    for sink in sinks:  # from here on the output stage closes them, each on its own thread
        closers.remove(sink.close)
    output = Output(sinks=sinks)
    closers.append(output.close)
    worker = Worker(
        source=source,
        model=model,
        sinks=[output],
        rate=analysis.rate,
        smoothing_s=analysis.smoothing,
        silence_dbfs=analysis.silence_dbfs,
        duration_s=settings.input.duration,
    )
    closers.remove(output.close)  # from here on the worker closes it (and only once its thread has ended)
    closers.append(worker.close)
    model_close = closers.index(model.close)  # a thread that never stopped may still be in the model
    closers[model_close] = lambda: None if worker.alive else model.close()
    control = _make_control(settings=settings, worker=worker)
    if control is not None:
        closers.append(control.close)
        control.start()
    try:
        source.start()
    except SourceError as error:
        raise UsageError(str(error)) from error
    worker.start()
    LOG.info(
        "version %s: %s at %g Hz -> %s; %g updates/s, model %s",
        __version__,
        _describe_source(settings=settings, source=source),
        source.samplerate,
        ", ".join(_describe_sinks(settings=settings)) or "no outputs",
        analysis.rate,
        model.variant,
    )
    lost = False
    while not stop.is_set() and not worker.finished.is_set():
        stop.wait(WAIT_S)
        if getattr(source, "lost", False):
            LOG.warning("the input device %r has gone; shutting down to wait for it", source.device["name"])
            lost = True
            break
    source.close()  # stop the stream first
    stopped = worker.stop()
    if control is not None:
        control.close()
    if stopped:
        worker.final_status()
        worker.close()  # closes (flushes) the sinks
        model.close()
    else:  # sending or closing now would race the stuck thread: leave the outputs and model to the exit
        LOG.error("the analysis thread did not stop within %.0f s; no final status sent, outputs left to the exit", STOP_TIMEOUT_S)
    closers.clear()
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
        return EXIT_FAILURE
    if lost and not worker.error:
        os.environ[RESUME_ENV] = json.dumps(source.resume_hint())
        return RESTART
    if source_error:
        return EXIT_USAGE  # bad input (a file that stops decoding partway): the user's to fix
    return EXIT_FAILURE if worker.error else EXIT_OK


def _describe_source(*, settings: Settings, source: object) -> str:
    inputs = settings.input
    pace = " (fast)" if inputs.fast else " (real time)"
    if inputs.demo:
        return "demo piece" + pace
    if inputs.file:
        return f"file {inputs.file}" + pace
    device = getattr(source, "device", {})
    if device.get("index") is None:
        return f"device {device.get('name')!r} ({device.get('hostapi_name')}; waiting for it)"
    return f"device {device.get('index')}: {device.get('name')!r}"


def _describe_sinks(*, settings: Settings) -> list[str]:
    out = []
    if settings.osc.enabled:
        out.append(f"OSC {' '.join(settings.osc.targets)} {settings.osc.prefix} ({settings.osc.format})")
    if settings.csv.path:
        out.append(f"CSV {settings.csv.path}")
    return out


def main(argv: list[str] | None = None) -> int:
    """The daemon alone (``mer-live`` without a subcommand); returns the exit status (2 for any startup
    problem). :func:`mer_live.cli.main` is the whole command line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(parser=build_parser(), run=lambda args: run(args, argv=argv), argv=argv)


if __name__ == "__main__":
    sys.exit(main())
