"""The OSCQuery namespace of mer-live: a JSON tree of every OSC address it sends and every control
address it obeys, served over HTTP by :mod:`mer_live.outputs.web.server`.

Follows the OSCQuery proposal (Vidvox, github.com/Vidvox/OSCQueryProposal): every node has
``FULL_PATH``; a container has ``CONTENTS``; a method has ``TYPE`` (OSC type tags), ``ACCESS``
(1: read, values are sent; 2: write, the control port takes it), ``RANGE`` (one ``{"MIN", "MAX"}`` or
``{"VALS"}`` object per argument) and ``DESCRIPTION``. ``?HOST_INFO`` names the server and where it
takes OSC: ``OSC_IP``/``OSC_PORT``/``OSC_TRANSPORT`` are the control port's (the address that a
discovering tool sends to); where the values go is set with ``--osc``.

The tree is generated, never written by hand: the sent addresses come from
:data:`mer_live.core.osc_addresses.ADDRESSES` (the table the OSC sink sends from), the writable ones from
the control port's commands and the live settings' declarations (limits and help), which the daemon hands
the web output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mer_live.core.osc_addresses import ADDRESSES, OscAddress

ACCESS_READ = 1
ACCESS_WRITE = 2
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "RANGE", "DESCRIPTION", "ACCESS", "VALUE")


@dataclass(frozen=True)
class Method:
    """One OSC address with its attributes (a leaf of the tree)."""

    path: str
    types: str
    access: int
    description: str
    ranges: tuple[dict[str, Any], ...]


def _range(*, bounds: tuple[float | None, float | None], values: tuple[str, ...] = ()) -> dict[str, Any]:
    if values:
        return {"VALS": list(values)}
    low, high = bounds
    return {key: value for key, value in (("MIN", low), ("MAX", high)) if value is not None}


def _sent(*, address: OscAddress, prefix: str) -> Method:
    ranges = tuple(
        _range(bounds=bounds, values=address.values if tag == "s" else ())
        for tag, bounds in zip(address.types, address.ranges)
    )
    return Method(path=prefix + address.path, types=address.types, access=ACCESS_READ, description=address.description, ranges=ranges)


def control_methods(*, prefix: str, controls: list[dict[str, Any]]) -> list[Method]:
    """The control port's writable addresses, from the control descriptions the daemon gives the page
    (:func:`mer_live.outputs.web.sink.controls`: ``name``, ``types``, ``min``, ``max``, ``help``)."""
    return [
        Method(
            path=f"{prefix}/{control['name']}", types=control["types"], access=ACCESS_WRITE, description=control["help"],
            ranges=tuple(_range(bounds=(control["min"], control["max"])) for _ in control["types"]),
        )
        for control in controls
    ]


def methods(*, prefix: str, controls: list[dict[str, Any]]) -> list[Method]:
    """Every method of the namespace: the sent addresses, then the writable ones (none without a control port)."""
    return [_sent(address=address, prefix=prefix) for address in ADDRESSES] + control_methods(prefix=prefix, controls=controls)


def _node(*, path: str) -> dict[str, Any]:
    return {"FULL_PATH": path, "CONTENTS": {}}


def _method_node(*, method: Method) -> dict[str, Any]:
    node: dict[str, Any] = {"FULL_PATH": method.path, "ACCESS": method.access, "DESCRIPTION": method.description}
    if method.types:
        node["TYPE"] = method.types
        node["RANGE"] = [dict(r) for r in method.ranges]
    return node


def tree(*, prefix: str, controls: list[dict[str, Any]], description: str = "mer-live") -> dict[str, Any]:
    """The namespace as the JSON object served at ``/``. A path may be both a method and a container
    (``/mer/emotion`` is sent, and holds ``/mer/emotion/valence``): such a node has both."""
    root = _node(path="/")
    root["DESCRIPTION"] = description
    for method in methods(prefix=prefix, controls=controls):
        parts = method.path.strip("/").split("/")
        node = root
        for depth, part in enumerate(parts):
            path = "/" + "/".join(parts[: depth + 1])
            contents = node.setdefault("CONTENTS", {})
            node = contents.setdefault(part, {"FULL_PATH": path})
        node.update(_method_node(method=method))
    return root


def find(*, root: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The node at ``path`` (``"/"``, ``"/mer/emotion"``), or None."""
    node = root
    for part in [p for p in path.split("/") if p]:
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


@dataclass(frozen=True)
class HostInfo:
    """``?HOST_INFO``: who serves the namespace and where it takes OSC (the control port, if any)."""

    name: str
    osc_ip: str | None
    osc_port: int | None
    extensions: dict[str, bool]

    def as_json(self) -> dict[str, Any]:
        info: dict[str, Any] = {"NAME": self.name, "EXTENSIONS": dict(self.extensions)}
        if self.osc_port is not None:
            info.update({"OSC_IP": self.osc_ip, "OSC_PORT": self.osc_port, "OSC_TRANSPORT": "UDP"})
        return info


def extensions(*, listen: bool) -> dict[str, bool]:
    """The OSCQuery extensions served: the required attributes, and LISTEN over the WebSocket."""
    names = {attribute: True for attribute in ATTRIBUTES if attribute not in ("FULL_PATH", "CONTENTS", "VALUE")}
    names.update({"VALUE": False, "LISTEN": listen, "PATH_CHANGED": False, "TAGS": False, "CLIPMODE": False, "UNIT": False})
    return names

