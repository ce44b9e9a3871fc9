"""Every address the OSC output sends, declared once: its path below the prefix, type tags, meaning,
range and how it is read from a :class:`~mer_live.reading.Reading`.

The OSC sink builds its messages from :data:`ADDRESSES` (in this order), and the web output's
OSCQuery namespace is generated from the same table, so the two cannot disagree. docs/OSC.md is the
reader's version of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mer_live.core import labels
from mer_live.core.osc import Argument
from mer_live.core.reading import STATES, Reading
UNIT = (0.0, 1.0)
UNBOUNDED = (None, None)


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


@dataclass(frozen=True)
class OscAddress:
    """One sent address.

    ``path``: below the prefix (``"/emotion/valence"``); ``types``: the OSC type tags of its arguments;
    ``ranges``: ``(low, high)`` per argument (None: unbounded; a string argument's range is ``values``);
    ``read``: the arguments of one reading; ``always``: sent in every reading, heartbeats and muted ones
    included (the status), else only with values."""

    path: str
    types: str
    description: str
    ranges: tuple[tuple[float | None, float | None], ...]
    read: Callable[[Reading], list[Argument]]
    always: bool = False
    values: tuple[str, ...] = ()


def _status(reading: Reading) -> list[Argument]:
    return [reading.state, float(reading.level_dbfs), int(reading.overflows), int(reading.updates), int(reading.dropped)]


def _one(*, attribute: str, index: int) -> Callable[[Reading], list[Argument]]:
    return lambda reading: [float(getattr(reading, attribute)[index])]


def _all(*, attribute: str) -> Callable[[Reading], list[Argument]]:
    return lambda reading: _floats(getattr(reading, attribute))


def _explain(*, index: int) -> Callable[[Reading], list[Argument]]:
    return lambda reading: _floats(reading.contributions[index])


def _declare() -> tuple[OscAddress, ...]:
    emotions, mids = labels.EMOTIONS, labels.MID_LEVELS
    addresses = [
        OscAddress(
            path="/status", types="sfiii", always=True, values=STATES,
            description="state, input level (dBFS, floored at -120), input overflows, updates so far, updates the outputs dropped",
            ranges=((None, None), (-120.0, 0.0), (0, None), (0, None), (0, None)), read=_status,
        ),
        OscAddress(
            path="/emotion", types="f" * len(emotions), read=_all(attribute="emotion"),
            description="the 8 emotions, smoothed, 0-1 (" + " ".join(emotions) + ")", ranges=(UNIT,) * len(emotions),
        ),
        OscAddress(
            path="/mid", types="f" * len(mids), read=_all(attribute="mid"),
            description="the 7 mid-level features, smoothed, 0-1 (" + " ".join(mids) + ")", ranges=(UNIT,) * len(mids),
        ),
    ]
    addresses += [
        OscAddress(path=f"/emotion/{name}", types="f", read=_one(attribute="emotion", index=index),
                   description=f"{name}, smoothed, 0-1 (a mean rating of 1 to 9 mapped to 0-1)", ranges=(UNIT,))
        for index, name in enumerate(emotions)
    ]
    addresses += [
        OscAddress(path=f"/mid/{name}", types="f", read=_one(attribute="mid", index=index),
                   description=f"mid-level feature {name}, smoothed, 0-1", ranges=(UNIT,))
        for index, name in enumerate(mids)
    ]
    addresses += [
        OscAddress(path=f"/explain/{name}", types="f" * len(mids), read=_explain(index=index), ranges=(UNBOUNDED,) * len(mids),
                   description=f"the contribution of each mid-level feature to {name} (" + " ".join(mids) + "); "
                   f"bias + their sum = {name} before clipping")
        for index, name in enumerate(emotions)
    ]
    addresses += [
        OscAddress(path="/explain/bias", types="f" * len(emotions), read=_all(attribute="bias"), ranges=(UNBOUNDED,) * len(emotions),
                   description="the bias of each emotion's linear layer, in sent units (" + " ".join(emotions) + ")"),
        OscAddress(path="/raw/emotion", types="f" * len(emotions), read=_all(attribute="raw_emotion"), ranges=(UNIT,) * len(emotions),
                   description="the 8 emotions before smoothing, 0-1"),
        OscAddress(path="/raw/mid", types="f" * len(mids), read=_all(attribute="raw_mid"), ranges=(UNIT,) * len(mids),
                   description="the 7 mid-level features before smoothing, 0-1"),
    ]
    return tuple(addresses)


ADDRESSES: tuple[OscAddress, ...] = _declare()


def messages(*, reading: Reading, prefix: str) -> list[tuple[str, list[Argument]]]:
    """The ``(address, arguments)`` pairs of one reading, in sending order: the status only while
    muted or before the first reading, else every address."""
    full = not reading.muted and reading.has_values
    return [(prefix + address.path, address.read(reading)) for address in ADDRESSES if address.always or full]
