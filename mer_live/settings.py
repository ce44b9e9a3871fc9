"""The daemon's settings: their defaults and limits, in one leaf module (standard library only).

The limits are shared by the command line, the TOML file (:mod:`mer_live.config`), the control port
(:mod:`mer_live.control`) and the worker, so that all of them accept the same values.
"""

from __future__ import annotations

from typing import Any

SMOOTHING_RANGE_S = (0.0, 60.0)
RATE_RANGE_HZ = (0.5, 30.0)
SILENCE_RANGE_DBFS = (-120.0, 0.0)
THREADS_RANGE = (1, 64)
CHANNEL_MIX = -1  # input.channel: mix the first inputs to mono
MAX_SAMPLERATE = 768000
DEFAULT_PREFIX = "/mer"
OSC_FORMAT_BUNDLE = "bundle"
OSC_FORMAT_MESSAGES = "messages"
OSC_FORMATS = (OSC_FORMAT_BUNDLE, OSC_FORMAT_MESSAGES)

DEFAULTS: dict[str, dict[str, Any]] = {
    "input": {
        "device": "",
        "channel": CHANNEL_MIX,
        "samplerate": 0,
        "file": "",
        "fast": False,
        "demo": False,
        "duration": 0.0,
    },
    "analysis": {
        "rate": 4.0,
        "smoothing": 2.0,
        "silence_dbfs": -60.0,
        "threads": 1,
        "model": "",
    },
    "osc": {
        "enabled": True,
        "targets": ["127.0.0.1:9000"],
        "prefix": DEFAULT_PREFIX,
        "format": OSC_FORMAT_BUNDLE,
    },
    "csv": {"path": ""},
    "control": {"enabled": True, "listen": "127.0.0.1:9001"},
    "log": {"quiet": False},
}
