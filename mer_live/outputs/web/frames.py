"""What the web server sends for one reading: the dashboard's JSON frame, its history entry, and the
OSC datagrams of the listened addresses (OSCQuery LISTEN). Built once per reading in the web process,
whatever the number of clients. Values are rounded as the CSV log writes them (``VALUE_DECIMALS``, the
CSV output's ``CSV_VALUE_DECIMALS``: a test holds them equal), so the page shows what the log records."""

from __future__ import annotations

import json
from typing import Any

from mer_live.core import osc
from mer_live.core.osc_addresses import messages as osc_address_messages
from mer_live.core.reading import Reading
from mer_live.outputs.web.server import Frame

VALUE_DECIMALS = 6
HISTORY_DECIMALS = 4  # the history plot's resolution (a pixel is coarser)


def _rounded(values, *, decimals: int = VALUE_DECIMALS) -> list[float]:
    return [round(float(v), decimals) for v in values]


def build(
    *,
    reading: Reading,
    config: dict[str, Any] | None,
    outputs: list[dict[str, Any]] | None,
    clients: int,
    skipped: int,
    prefix: str,
    listened: bool,
) -> Frame:
    """The frame of ``reading``; ``config``: the live settings now; ``outputs``: every output's counters;
    ``clients``/``skipped``: the web server's own; ``listened``: whether any OSCQuery client listens."""
    values = reading.has_values and not reading.muted
    body: dict[str, Any] = {
        "type": "frame",
        "t": round(reading.stream_time_s, 3),
        "wall": reading.wall_time,
        "state": reading.state,
        "level": round(reading.level_dbfs, 2),
        "overflows": reading.overflows,
        "updates": reading.updates,
        "dropped": reading.dropped,
        "muted": reading.muted,
        "update": reading.is_update,
        "clients": clients,
        "skipped": skipped,
    }
    if values:
        body.update(
            emotion=_rounded(reading.emotion), mid=_rounded(reading.mid),
            contributions=[_rounded(row) for row in reading.contributions], bias=_rounded(reading.bias),
            emotion_unclipped=_rounded(reading.emotion_unclipped),
            raw_emotion=_rounded(reading.raw_emotion), raw_mid=_rounded(reading.raw_mid),
        )
    if config is not None:
        body["config"] = config
    if outputs is not None:
        body["outputs"] = outputs
    history = None
    if values and reading.is_update:
        history = json.dumps([body["t"], _rounded(reading.emotion, decimals=HISTORY_DECIMALS), _rounded(reading.mid, decimals=HISTORY_DECIMALS)])
    datagrams: dict[str, bytes] = {}
    if listened:
        datagrams = {address: osc.message(address=address, arguments=arguments)
               for address, arguments in osc_address_messages(reading=reading, prefix=prefix)}
    return Frame(text=json.dumps(body, separators=(",", ":")), osc=datagrams, history=history)
