"""The sound devices: PortAudio's inputs (via sounddevice), listed, looked up by id or name, and opened.

The capture child process (:mod:`mer_live.live.capture`) opens the stream; the daemon itself only lists
devices (``-l``). ``sounddevice``, which starts PortAudio when imported, is imported lazily, so that
tests can point ALSA or JACK at test devices first.
"""

from __future__ import annotations

import difflib

from mer_live.audio import SAMPLERATE_RANGE_HZ

MAX_MIX_CHANNELS = 2  # a sound card's mono mix uses at most its first two inputs (a file's uses all)
CLOSE_MATCHES = 3
CLOSE_MATCH_CUTOFF = 0.4


class SourceError(RuntimeError):
    """A source that cannot be opened; the message is one line naming the problem and the fix."""


def _sounddevice():
    import sounddevice

    return sounddevice


def input_devices() -> list[dict]:
    """Every device with at least one input channel, as sounddevice describes them (with ``index``)."""
    try:
        sd = _sounddevice()
        devices = sd.query_devices()
    except OSError as error:  # PortAudio library missing
        raise SourceError(f"cannot load PortAudio ({error}); install libportaudio2, or use --input FILE or --demo") from error
    return [dict(device, index=index) for index, device in enumerate(devices) if device["max_input_channels"] > 0]


def list_devices() -> str:
    """A human-readable list of all devices, inputs marked (what ``-l/--list-devices`` prints).
    Raises :class:`SourceError` when PortAudio cannot be loaded."""
    inputs = input_devices()  # raises SourceError first when PortAudio is missing
    lines = [str(_sounddevice().query_devices())]
    if not inputs:
        lines.append("no input devices: use --input FILE or --demo")
    return "\n".join(lines)


def _no_inputs_error() -> SourceError:
    return SourceError("no audio input device found; run with --input FILE or --demo, or connect a sound card (-l lists devices)")


def find_input_device(*, spec: str) -> dict:
    """The input device named by ``spec``: a numeric id, a name substring, or "" for the default.

    Raises :class:`SourceError` listing close matches when nothing (or more than one) matches.
    """
    inputs = input_devices()
    if not inputs:
        raise _no_inputs_error()
    spec = str(spec).strip()
    if spec == "":
        default = _sounddevice().default.device[0]
        for device in inputs:
            if device["index"] == default:
                return device
        return inputs[0]
    names = ", ".join(f"{d['index']}: {d['name']!r}" for d in inputs)
    if spec.lstrip("-").isdigit():
        for device in inputs:
            if device["index"] == int(spec):
                return device
        raise SourceError(f"no input device with id {spec}; inputs are {names} (-l lists devices)")
    matches = [d for d in inputs if spec.lower() in d["name"].lower()]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        listed = ", ".join(f"{d['index']}: {d['name']!r}" for d in matches)
        raise SourceError(f"input device {spec!r} is ambiguous: it matches {listed}; pass the numeric id with -d")
    by_name = {d["name"]: d for d in inputs}
    close = difflib.get_close_matches(spec, list(by_name), n=CLOSE_MATCHES, cutoff=CLOSE_MATCH_CUTOFF)
    close += [name for name in by_name if name not in close and any(w and w.lower() in name.lower() for w in spec.split())]
    if close:
        suggestion = ", ".join(f"{by_name[n]['index']}: {n!r}" for n in close[:CLOSE_MATCHES])
        raise SourceError(f"no input device matches {spec!r}; close matches: {suggestion} (-l lists devices)")
    raise SourceError(f"no input device matches {spec!r}; inputs are {names} (-l lists devices)")


def _hostapi_name(*, device: dict) -> str:
    return str(_sounddevice().query_hostapis(device["hostapi"])["name"])


def open_input_device(*, request: dict) -> dict:
    """In the capture child: the device of ``request`` (see :func:`mer_live.live.capture.run_child`), checked
    against the channels and rate wanted; returns what the daemon needs to know. Raises :class:`SourceError`."""
    channel = request["channel"]
    if "name" in request:
        found = [d for d in input_devices() if d["name"] == request["name"] and _hostapi_name(device=d) == request["hostapi"]]
        if not found:
            raise SourceError(f"no input device named {request['name']!r} on {request['hostapi']}")
        device = found[0]
    else:
        device = find_input_device(spec=request["spec"])
    available = int(device["max_input_channels"])
    if channel is not None and not 0 <= channel < available:
        raise SourceError(
            f"--channel {channel}: device {device['name']!r} has {available} input channel(s); "
            f"use 0 to {available - 1}, or leave it out for a mono mix"
        )
    channels = request["channels"] or (channel + 1 if channel is not None else min(available, MAX_MIX_CHANNELS))
    if channels > available:
        raise SourceError(f"it is back with only {available} input channel(s)")
    samplerate = float(request["samplerate"]) if request["samplerate"] else float(device["default_samplerate"])
    low, high = SAMPLERATE_RANGE_HZ
    if not low <= samplerate <= high:
        raise SourceError(
            f"device {device['name']!r} runs at {samplerate:g} Hz, outside {low} to {high} Hz; "
            "pass --samplerate with a rate it supports in that range"
        )
    sd = _sounddevice()
    try:
        sd.check_input_settings(device=device["index"], channels=channels, samplerate=samplerate, dtype="float32")
    except (sd.PortAudioError, ValueError) as error:
        raise SourceError(
            f"device {device['name']!r} cannot capture {channels} channel(s) at {samplerate:g} Hz "
            f"({error}); try another --samplerate or --channel"
        ) from error
    return {
        "index": device["index"], "name": device["name"], "hostapi_name": _hostapi_name(device=device),
        "channels": channels, "samplerate": samplerate,
    }


def start_input_stream(*, info: dict, callback):
    """In the capture child: a started ``sounddevice.InputStream`` on the device of ``info`` calling
    ``callback``. Raises :class:`SourceError`."""
    sd = _sounddevice()
    stream = None
    try:
        stream = sd.InputStream(
            device=info["index"], channels=info["channels"], samplerate=info["samplerate"], dtype="float32", callback=callback
        )
        stream.start()
    except (sd.PortAudioError, ValueError) as error:
        if stream is not None:
            stream.close(ignore_errors=True)
        raise SourceError(f"cannot start capture on {info['name']!r} ({error}); check the device or use --input/--demo") from error
    return stream
