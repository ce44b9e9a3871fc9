"""mer_live/examples/puredata/mer-live.pd in the real Pure Data (pd -nogui), fed real OSC over UDP."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from control_helpers import ControlClient, build_message
from osc_receivers import (
    PD_PATCH,
    PD_PRINTED,
    STATES,
    LEVEL_FLOOR_DBFS,
    DaemonProcess,
    PdProcess,
    clip_path,
    contract_datagrams,
    distinct_frame,
    free_udp_port,
    send_datagrams,
)

from mer_live.core.labels import EMOTIONS, MID_LEVELS

PD_FLOAT_TOLERANCE = 1e-4  # Pd prints 32-bit floats with 6 significant digits
CUTOFF_RANGE_HZ = (200.0, 6000.0)
pd_missing = shutil.which("pd") is None


def test_patch_is_pd_vanilla_and_routes_every_address() -> None:
    text = PD_PATCH.read_text()
    assert text.startswith("#N canvas")
    objects = re.findall(r"^#X obj \d+ \d+ ([^ ;]+)", text, flags=re.MULTILINE)
    vanilla = {
        "netreceive", "oscparse", "list", "route", "s", "r", "unpack", "hsl", "tgl", "expr", "line~", "phasor~",
        "-~", "vcf~", "*~", "dac~", "inlet", "array", "oscformat", "netsend", "print",
    }
    assert set(objects) <= vanilla, f"non-vanilla objects: {set(objects) - vanilla}"
    assert "#X obj 20 100 netreceive -u -b 9000;" in text
    for name in (*EMOTIONS, *MID_LEVELS, "bias", "emotion", "mid"):
        assert re.search(rf"#X obj \d+ \d+ route {name};", text), name
    assert "route emotion mid status explain raw" in text


def test_patch_connections_reference_existing_objects() -> None:
    """Every ``#X connect`` names objects that exist in its canvas (a typo breaks the patch)."""
    stack: list[list[int]] = []
    for line in PD_PATCH.read_text().splitlines():
        if line.startswith("#N canvas"):
            stack.append([0])
        elif line.startswith("#X restore"):
            stack.pop()
            stack[-1][0] += 1
        elif line.startswith("#X connect"):
            source, _, sink, _ = (int(part) for part in line.rstrip(";").split()[2:6])
            assert source < stack[-1][0] and sink < stack[-1][0], line
        elif re.match(r"#X (obj|msg|text|floatatom|symbolatom) ", line):
            stack[-1][0] += 1
    assert len(stack) == 1


@pytest.fixture
def pd(tmp_path):
    if pd_missing:
        pytest.skip("pd (Debian puredata-core) is not installed")
    process = PdProcess(port=free_udp_port(), directory=tmp_path)
    try:
        process.wait_listening()
        yield process
    finally:
        process.close()


def wait_for_all(pd: PdProcess, *, count: int = 1, timeout: float = 10.0) -> dict:
    def every_name_printed(_lines) -> bool:
        values = pd.values()
        return all(len(values.get(name, [])) >= count for name in PD_PRINTED)

    assert pd.output.wait_for(predicate=every_name_printed, timeout=timeout), (
        f"missing: {[name for name in PD_PRINTED if name not in pd.values()]}\n" + "\n".join(pd.output.snapshot()[-40:])
    )
    return pd.values()


@pytest.mark.slow
@pytest.mark.parametrize("bundle", [True, False], ids=["bundle", "messages"])
def test_pd_routes_every_value_to_its_name(pd, bundle) -> None:
    frame = distinct_frame(updates=7)
    send_datagrams(datagrams=contract_datagrams(frame=frame, bundle=bundle), port=pd.port)
    values = wait_for_all(pd)
    for index, name in enumerate(EMOTIONS):
        assert values[f"mer.emotion.{name}"][-1][0] == pytest.approx(frame.emotion[index], abs=PD_FLOAT_TOLERANCE)
        assert values["mer.explain." + name][-1] == pytest.approx(list(frame.explain[index]), abs=PD_FLOAT_TOLERANCE)
    for index, name in enumerate(MID_LEVELS):
        assert values[f"mer.mid.{name}"][-1][0] == pytest.approx(frame.mid[index], abs=PD_FLOAT_TOLERANCE)
    assert values["mer.emotion.all"][-1] == pytest.approx(list(frame.emotion), abs=PD_FLOAT_TOLERANCE)
    assert values["mer.mid.all"][-1] == pytest.approx(list(frame.mid), abs=PD_FLOAT_TOLERANCE)
    assert values["mer.explain.bias"][-1] == pytest.approx(list(frame.bias), abs=PD_FLOAT_TOLERANCE)
    assert values["mer.raw.emotion"][-1] == pytest.approx(list(frame.raw_emotion), abs=PD_FLOAT_TOLERANCE)
    assert values["mer.raw.mid"][-1] == pytest.approx(list(frame.raw_mid), abs=PD_FLOAT_TOLERANCE)
    assert values["mer.status.state"][-1] == ["running"]
    assert values["mer.status.level"][-1] == [pytest.approx(frame.level)]
    assert values["mer.status.overflows"][-1] == [frame.overflows]
    assert values["mer.status.updates"][-1] == [frame.updates]
    tension = frame.emotion[EMOTIONS.index("tension")]
    expected_cutoff = CUTOFF_RANGE_HZ[0] * (CUTOFF_RANGE_HZ[1] / CUTOFF_RANGE_HZ[0]) ** tension
    assert values["mer.cutoff"][-1][0] == pytest.approx(expected_cutoff, rel=1e-3)


@pytest.mark.slow
def test_pd_loads_the_patch_without_errors(pd) -> None:
    pd.output.wait_quiet(quiet_s=0.3)
    problems = [line for line in pd.output.snapshot() if "couldn't create" in line or "error" in line.lower()]
    assert not problems, problems


@pytest.mark.slow
def test_pd_ignores_other_prefixes(pd) -> None:
    frame = distinct_frame()
    send_datagrams(datagrams=contract_datagrams(frame=frame, prefix="/other"), port=pd.port)
    send_datagrams(datagrams=contract_datagrams(frame=distinct_frame(updates=99)), port=pd.port)
    values = wait_for_all(pd)
    assert [value for value in values["mer.status.updates"]] == [[0.0], [99.0]]  # probe, then /mer only


def check_pd_run(values: dict) -> None:
    """What every real run must show in Pd: the 15 values, lists and status, all in range."""
    for name in PD_PRINTED:
        assert name in values, name
    for name in (*(f"mer.emotion.{n}" for n in EMOTIONS), *(f"mer.mid.{n}" for n in MID_LEVELS)):
        for (value,) in values[name]:
            assert 0.0 <= value <= 1.0, (name, value)
    for name, size in (("mer.emotion.all", 8), ("mer.mid.all", 7), ("mer.raw.emotion", 8), ("mer.raw.mid", 7),
                       ("mer.explain.bias", 8), *((f"mer.explain.{n}", 7) for n in EMOTIONS)):
        assert {len(value) for value in values[name]} == {size}, name
    for name in ("mer.emotion.all", "mer.mid.all"):
        assert np.all((np.array(values[name]) >= 0) & (np.array(values[name]) <= 1)), name
    states = [value[0] for value in values["mer.status.state"] if value[0] != "probe"]
    assert states and set(states) <= set(STATES)
    for (level,) in values["mer.status.level"][1:]:
        assert LEVEL_FLOOR_DBFS <= level <= 0.0
    updates = [value[0] for value in values["mer.status.updates"][1:]]
    assert max(updates) >= 1 and all(u >= 0 for u in updates)
    for (cutoff,) in values["mer.cutoff"]:
        assert CUTOFF_RANGE_HZ[0] - 1e-3 <= cutoff <= CUTOFF_RANGE_HZ[1] + 1e-3


RUN_SECONDS = "12"  # >10 s so the window fills and the state leaves "warming"


def daemon_run_args(*, source: list[str], port: int, fmt: str = "bundle") -> list[str]:
    return [*source, "--fast", "--duration", RUN_SECONDS, "--osc", f"127.0.0.1:{port}", "--osc-format", fmt,
            "--no-control", "-q"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["bundle", "messages"])
def test_pd_receives_the_daemon_demo(pd, fmt) -> None:
    daemon = DaemonProcess(args=daemon_run_args(source=["--demo"], port=pd.port, fmt=fmt))
    assert daemon.wait() == 0, daemon.stderr_text()
    pd.output.wait_quiet()
    values = wait_for_all(pd)
    check_pd_run(values)
    states = {value[0] for value in values["mer.status.state"]}
    assert {"warming", "running"} <= states, states


@pytest.mark.slow
def test_pd_receives_the_daemon_on_a_real_clip(pd, shared_data) -> None:
    clip = clip_path(shared_data=shared_data)
    daemon = DaemonProcess(args=daemon_run_args(source=["--input", str(clip)], port=pd.port))
    assert daemon.wait() == 0, daemon.stderr_text()
    pd.output.wait_quiet()
    values = wait_for_all(pd)
    check_pd_run(values)
    updates = [value[0] for value in values["mer.status.updates"][1:]]
    assert max(updates) >= int(RUN_SECONDS) * 4 - 1  # 4 updates/s of stream time, minus the first


@pytest.mark.slow
def test_pd_control_subpatch_adjusts_the_daemon(tmp_path) -> None:
    """[pd control] -> [netsend -u -b] -> the daemon's control port; the replies come back to Pd."""
    if pd_missing:
        pytest.skip("pd (Debian puredata-core) is not installed")
    osc_port, control_port = free_udp_port(), free_udp_port()
    daemon = DaemonProcess(args=["--demo", "--duration", "30", "--osc", f"127.0.0.1:{osc_port}",
                                 "--control", f"127.0.0.1:{control_port}", "-q"])
    client = ControlClient(port=control_port)
    pd_process = None
    try:
        client.wait_until_up()  # the daemon's control port answers
        pd_process = PdProcess(port=osc_port, directory=tmp_path, sends=(
            f"mer.control connect 127.0.0.1 {control_port}",
            "mer.control.rate 10", "mer.control.smoothing 7", "mer.control.mute 1",
            "mer.control.ping 7", "mer.control.query bang",
        ))
        expected = {
            "mer-live-control: list mer pong 7",
            "mer-live-control: list mer config rate 10",
            "mer-live-control: list mer config smoothing 7",
            "mer-live-control: list mer config muted 1",
        }
        # the query's reply is a bundle that Pd prints one message at a time: wait for all of them
        assert pd_process.output.wait_for(predicate=lambda lines: expected <= set(lines), timeout=10), "\n".join(
            pd_process.output.snapshot()
        )
        client.send(build_message("/mer/query"))
        config = {m.address: m.params[0] for m in client.receive()}
        assert (config["/mer/config/rate"], config["/mer/config/smoothing"], config["/mer/config/muted"]) == (10.0, 7.0, 1)
        assert daemon.stop() == 0
    finally:
        client.close()
        if pd_process is not None:
            pd_process.close()
        daemon.close()
