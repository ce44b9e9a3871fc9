"""The built-in presets (mer_live/config/presets/, package data) load with mer_live.config.options, by name or
by path, and say what their names promise."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from pathlib import Path

import pytest
from osc_receivers import DaemonProcess
from pythonosc.osc_packet import OscPacket

from mer_live.config import options, presets
from mer_live.config.settings import Settings
from mer_live.core.labels import EMOTIONS, MID_LEVELS

DEFAULT_TOML = Path(__file__).resolve().parent.parent / "configs" / "default.toml"
PRESETS = ("maxmsp", "supercollider", "puredata", "rehearsal", "stage")
EXAMPLES = presets.examples_folder()


def load(name: str) -> dict:
    return options.resolve(toml_path=name, cli={})


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_and_validates(name) -> None:
    settings = load(name).as_dict()
    assert set(settings) == set(Settings().as_dict())
    raw = options.load_toml(path=presets.preset_path(name))
    for section, entries in raw.items():  # every key in the preset took effect
        for key, value in entries.items():
            assert settings[section][key] == value, f"{name}: {section}.{key}"


def test_maxmsp_preset_targets_udpreceive_port() -> None:
    settings = load("maxmsp")
    assert settings.osc.enabled is True
    assert settings.osc.targets == ("127.0.0.1:9000",)
    patch = (EXAMPLES / "maxmsp" / "mer-live.maxpat").read_text()
    boxes = json.loads(patch)["patcher"]["boxes"]
    assert any(box["box"].get("text") == "udpreceive 9000" for box in boxes)


def test_supercollider_preset_targets_sclang() -> None:
    assert load("supercollider").osc.targets == ("127.0.0.1:57120",)


def test_puredata_preset_matches_the_patch_port() -> None:
    settings = load("puredata")
    (target,) = settings.osc.targets
    port = re.search(r"netreceive -u -b (\d+);", (EXAMPLES / "puredata" / "mer-live.pd").read_text()).group(1)
    assert target == f"127.0.0.1:{port}"


def test_rehearsal_preset_is_csv_only_and_quiet() -> None:
    settings = load("rehearsal")
    assert settings.osc.enabled is False
    assert settings.csv.path.endswith(".csv")
    assert settings.log.quiet is True


def test_stage_preset_has_several_targets_and_a_broadcast() -> None:
    settings = load("stage")
    targets = settings.osc.targets
    assert len(targets) >= 3
    hosts = [ipaddress.ip_address(target.rsplit(":", 1)[0]) for target in targets]
    broadcasts = [host for host in hosts if str(host).endswith(".255")]
    assert broadcasts and all(ipaddress.ip_network(f"{host}/24", strict=False).broadcast_address == host for host in broadcasts)
    assert settings.control.enabled is True
    assert ipaddress.ip_address(settings.control.listen.rsplit(":", 1)[0]).is_loopback


@pytest.mark.parametrize("name", PRESETS)
def test_command_line_beats_the_preset(name) -> None:
    settings = options.resolve(
        toml_path=name,
        cli={"osc": {"targets": ["127.0.0.1:7777"]}, "analysis": {"rate": 2.0}},
    )
    assert settings.osc.targets == ("127.0.0.1:7777",)
    assert settings.analysis.rate == 2.0


@pytest.mark.parametrize("name", PRESETS)
def test_presets_only_use_documented_keys(name) -> None:
    """Every key a preset sets is documented in configs/default.toml (written by the daemon issue)."""
    documented = options.load_toml(path=DEFAULT_TOML)
    for section, entries in options.load_toml(path=presets.preset_path(name)).items():
        assert set(entries) <= set(documented[section]), f"{name} [{section}]"


class Listener:
    """A UDP socket that counts the OSC datagrams it receives."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.5)
        self.port = self.socket.getsockname()[1]

    def addresses(self) -> set[str]:
        found = set()
        while True:
            try:
                datagram, _ = self.socket.recvfrom(65_535)
            except socket.timeout:
                return found
            found |= {timed.message.address for timed in OscPacket(datagram).messages}


@pytest.mark.slow
def test_daemon_runs_the_rehearsal_preset(tmp_path) -> None:
    """CSV next to where it is started, quiet, no control port: the file has the rows."""
    daemon = DaemonProcess(args=["--config", "rehearsal", "--demo", "--fast", "--duration", "3"],
                           cwd=tmp_path)
    assert daemon.wait() == 0, daemon.stderr_text()
    rows = (tmp_path / "rehearsal.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[-15:] == [*EMOTIONS, *MID_LEVELS]
    assert len(rows) == 1 + 3 * 4  # header + 3 s at 4 updates/s
    assert "control port" not in daemon.stderr_text() and " s warming" not in daemon.stderr_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["stage", "puredata", "maxmsp", "supercollider"])
def test_daemon_runs_the_sending_presets(tmp_path, name) -> None:
    """Each OSC preset runs in the daemon; stage sends to several targets at once (here two local ones,
    given on the command line, which replaces the preset's list)."""
    listeners = [Listener() for _ in range(2 if name == "stage" else 1)]
    try:
        targets = [argument for listener in listeners for argument in ("--osc", f"127.0.0.1:{listener.port}")]
        daemon = DaemonProcess(args=["--config", name, "--demo", "--fast", "--duration", "2",
                                     *targets, "--control", "127.0.0.1:0", "--csv", str(tmp_path / "log.csv"), "-q"])
        assert daemon.wait() == 0, daemon.stderr_text()
        for listener in listeners:
            assert {"/mer/status", "/mer/emotion", "/mer/mid/minorness", "/mer/explain/bias"} <= listener.addresses()
    finally:
        for listener in listeners:
            listener.socket.close()
