"""mer_live/examples/maxmsp/mer-live.maxpat: Max cannot run here, so the patch's JSON graph is checked."""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from pathlib import Path

import pytest
from osc_receivers import MAX_PATCH

from mer_live.control.server import COMMANDS
from mer_live.core.labels import EMOTIONS, MID_LEVELS

OSC_DOC = Path(__file__).resolve().parent.parent / "docs" / "guide" / "osc.md"
CONTROL_WORDS = set(COMMANDS) | {"pong", "config"}  # the control port's addresses and its replies
DISPLAYS = {"slider", "flonum", "number", "multislider", "message"}


def contract_addresses(prefix: str = "/mer") -> set[str]:
    addresses = {f"{prefix}/status", f"{prefix}/emotion", f"{prefix}/mid", f"{prefix}/explain/bias",
                 f"{prefix}/raw/emotion", f"{prefix}/raw/mid"}
    addresses |= {f"{prefix}/emotion/{name}" for name in EMOTIONS}
    addresses |= {f"{prefix}/mid/{name}" for name in MID_LEVELS}
    addresses |= {f"{prefix}/explain/{name}" for name in EMOTIONS}
    return addresses


def documented_addresses() -> set[str]:
    """Every concrete output address docs/guide/osc.md names, written ``P/...`` or ``/mer/...``, with
    ``<name>``-style placeholders expanded; control-port addresses and wildcards are left out."""
    text = OSC_DOC.read_text()
    found = set()
    for prefix, path, placeholder in re.findall(r"(?<![\w/])(P|/mer)((?:/[a-z_]+)+)(?![a-z_])(?!/\*)(/<[a-z_]+>)?", text):
        if not placeholder:
            found.add(f"/mer{path}")
            continue
        names = MID_LEVELS if path.endswith("/mid") else EMOTIONS
        found |= {f"/mer{path}/{name}" for name in names}
    return {address for address in found if not set(address.split("/")) & CONTROL_WORDS}


class Patch:
    def __init__(self, path: Path) -> None:
        patcher = json.loads(path.read_text())["patcher"]
        self.boxes = {entry["box"]["id"]: entry["box"] for entry in patcher["boxes"]}
        self.lines = [entry["patchline"] for entry in patcher["lines"]]
        self.edges: dict[tuple[str, int], list[str]] = defaultdict(list)
        for line in self.lines:
            self.edges[(line["source"][0], line["source"][1])].append(line["destination"][0])

    def by_text(self, prefix: str) -> list[dict]:
        return [box for box in self.boxes.values() if str(box.get("text", "")).startswith(prefix)]

    def reachable(self, start: str) -> set[str]:
        seen, queue = {start}, deque([start])
        while queue:
            node = queue.popleft()
            for (source, _), destinations in self.edges.items():
                if source == node:
                    for destination in destinations:
                        if destination not in seen:
                            seen.add(destination)
                            queue.append(destination)
        return seen

    def routed(self) -> dict[str, str]:
        """address -> the id of the route object that passes it, for routes fed from udpreceive."""
        (udp,) = self.by_text("udpreceive ")
        reachable = self.reachable(udp["id"])
        routed = {}
        for ident in reachable:
            text = str(self.boxes[ident].get("text", ""))
            if text.startswith("route "):
                for outlet, address in enumerate(text.split()[1:]):
                    if self.edges.get((ident, outlet)):
                        routed[address] = f"{ident}:{outlet}"
        return routed


@pytest.fixture(scope="module")
def patch() -> Patch:
    return Patch(MAX_PATCH)


def test_patch_is_valid_max_json(patch) -> None:
    assert patch.boxes
    for line in patch.lines:
        (source, outlet), (destination, inlet) = line["source"], line["destination"]
        assert source in patch.boxes and destination in patch.boxes, line
        assert 0 <= outlet < patch.boxes[source]["numoutlets"], line
        assert 0 <= inlet < patch.boxes[destination]["numinlets"], line
    for box in patch.boxes.values():
        assert len(box["patching_rect"]) == 4
        if box["maxclass"] == "newobj" and box["numoutlets"]:
            assert len(box["outlettype"]) == box["numoutlets"], box["text"]


def test_listens_on_udp_9000(patch) -> None:
    assert [box["text"] for box in patch.by_text("udpreceive")] == ["udpreceive 9000"]


def test_route_outlet_counts_match_their_arguments(patch) -> None:
    for box in patch.by_text("route "):
        assert box["numoutlets"] == len(box["text"].split()) - 1 + 1, box["text"]


def test_every_contract_address_is_routed_to_a_display(patch) -> None:
    routed = patch.routed()
    missing = contract_addresses() - set(routed)
    assert not missing, f"not routed: {sorted(missing)}"
    for address in contract_addresses():
        ident, outlet = routed[address].split(":")
        shown = {patch.boxes[d]["maxclass"] for d in patch.edges[(ident, int(outlet))]}
        if address == "/mer/status":
            continue  # goes through [unpack], checked below
        assert shown & DISPLAYS, f"{address} is routed but not shown"


def test_every_address_in_the_osc_doc_is_routed(patch) -> None:
    documented = documented_addresses()
    assert contract_addresses() <= documented, "docs/guide/osc.md lacks contract addresses"
    assert not documented - set(patch.routed()), f"documented but not routed: {sorted(documented - set(patch.routed()))}"


def test_fifteen_values_have_sliders_and_numbers(patch) -> None:
    routed = patch.routed()
    for address in [f"/mer/emotion/{n}" for n in EMOTIONS] + [f"/mer/mid/{n}" for n in MID_LEVELS]:
        ident, outlet = routed[address].split(":")
        classes = {patch.boxes[d]["maxclass"] for d in patch.edges[(ident, int(outlet))]}
        assert {"slider", "flonum"} <= classes, address
        for destination in patch.edges[(ident, int(outlet))]:
            box = patch.boxes[destination]
            if box["maxclass"] == "slider":
                assert box["size"] == 1.0 and box["floatoutput"] == 1  # 0-1 floats, not 0-127 ints


def test_status_is_unpacked_into_a_display(patch) -> None:
    ident, outlet = patch.routed()["/mer/status"].split(":")
    (unpack,) = patch.edges[(ident, int(outlet))]
    assert patch.boxes[unpack]["text"].split()[:2] == ["unpack", "s"]
    assert patch.boxes[unpack]["numoutlets"] == 4
    for slot in range(4):
        assert patch.edges[(unpack, slot)], f"status field {slot} is not shown"


def test_patch_is_commented(patch) -> None:
    comments = [box["text"] for box in patch.boxes.values() if box["maxclass"] == "comment"]
    assert len(comments) >= 10
    assert any("mer-live --osc 127.0.0.1:9000" in text for text in comments)
