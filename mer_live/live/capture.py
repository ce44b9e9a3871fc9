"""The sound card in a child process: the PortAudio stream runs there and writes into a
:class:`~mer_live.live.ring_buffer.SharedRingBuffer` that the daemon's worker reads.

Why a process: PortAudio cannot always let go of a vanished device (with JACK, closing the stream or
terminating PortAudio blocks for minutes), and it enumerates devices only once, when it starts. A child
that is killed when its device vanishes, and started afresh to look for it again, sidesteps both with
public APIs only, and the daemon keeps its process, sockets and counters (:class:`~mer_live.live.source.CaptureSource`
supervises the children).

The child and the daemon talk over a :func:`multiprocessing.Pipe`:

1. child -> daemon: ``("device", info)`` once the device is found and accepts the settings, or
   ``("error", message)`` (one line) and the child exits;
2. daemon -> child: ``("start", ring_name, ring_capacity)`` or ``("stop",)``;
3. child -> daemon: ``("started",)`` once the stream runs, or ``("error", message)``;
4. the child then runs until ``("stop",)``, until the daemon is gone (the pipe closes), or until PortAudio stops the
   stream (the device vanished; exit status :data:`EXIT_LOST`). It leaves with ``os._exit``: PortAudio's
   own exit handler could hang on a dead device.

This module imports only numpy and the ring buffer at the top (a fork server preloads it);
sounddevice, which starts PortAudio when imported, is imported in the child only.
"""

from __future__ import annotations

import os
import signal
import threading
from multiprocessing.connection import Connection

from mer_live.live.ring_buffer import SharedRingBuffer

POLL_S = 0.05  # how often the child checks for a command, its parent and its stream
CLOSE_TIMEOUT_S = 2.0
EXIT_STOPPED = 0
EXIT_FAILED = 1
EXIT_LOST = 3


def _close_stream(*, stream) -> None:
    """Abort and close ``stream`` on a helper thread, giving up after ``CLOSE_TIMEOUT_S`` (a dead backend hangs)."""

    def _close() -> None:
        try:
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)
        except Exception:  # noqa: BLE001 - a dying backend may raise anything; the process exits next
            pass

    closer = threading.Thread(target=_close, daemon=True)
    closer.start()
    closer.join(CLOSE_TIMEOUT_S)


def _wait_for_command(*, connection: Connection) -> tuple | None:
    """The next command from the daemon, or None once the daemon has gone (its end of the pipe closed)."""
    try:
        return connection.recv()
    except (EOFError, OSError):
        return None


def run_child(connection: Connection, request: dict, ring_lock) -> None:
    """The child's main function. ``request``: ``spec`` (a device as ``-d`` takes it) or ``name`` and
    ``hostapi`` (exactly that device, when looking for one that vanished), ``channel``, ``channels`` (0: as
    ``channel`` implies), ``samplerate`` (0: the device's own). ``ring_lock``: the lock the daemon's end of
    the ring uses (:class:`~mer_live.live.ring_buffer.SharedRingBuffer`). The child ends when the daemon
    does: its end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the daemon decides
    from mer_live.live import devices

    code = EXIT_FAILED
    try:
        try:
            info = devices.open_input_device(request=request)
        except devices.SourceError as error:
            connection.send(("error", str(error)))
            return
        connection.send(("device", info))
        command = _wait_for_command(connection=connection)
        if not command or command[0] != "start":
            code = EXIT_STOPPED
            return
        ring = SharedRingBuffer(capacity=command[2], channels=info["channels"], name=command[1], lock=ring_lock)

        def callback(indata, frames, time_info, status) -> None:  # noqa: ARG001 (PortAudio's signature)
            """PortAudio's thread: count the overflow flag and copy into the ring, nothing else."""
            if status.input_overflow:
                ring.events += 1
            ring.write(frames=indata)

        try:
            stream = devices.start_input_stream(info=info, callback=callback)
        except devices.SourceError as error:
            connection.send(("error", str(error)))
            return
        connection.send(("started",))
        code = EXIT_STOPPED
        while True:
            if connection.poll(POLL_S):
                break  # ("stop",), or the pipe closed: the daemon has gone
            if not stream.active:
                code = EXIT_LOST
                break
        _close_stream(stream=stream)
        ring.flush()  # frames a busy lock held back in the last callbacks
    except (EOFError, OSError, BrokenPipeError):
        pass  # the daemon went away mid-conversation
    finally:
        os._exit(code)
