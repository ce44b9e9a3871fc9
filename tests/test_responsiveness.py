"""benchmarks/responsiveness.py's measures on traces whose answer is known (the daemon runs are the benchmark's)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "responsiveness.py"
sys.path.insert(0, str(_PATH.parent))  # the benchmark imports its shared helper (benchmarks/bench.py) as a script does
_SPEC = importlib.util.spec_from_file_location("responsiveness", _PATH)
responsiveness = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = responsiveness  # its dataclasses look their module up there
_SPEC.loader.exec_module(responsiveness)

RATE = 10.0


def _one_pole_steps(*, levels: list[float], tau: float, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    times = np.arange(1, int(len(levels) * responsiveness.SECTION_S * RATE) + 1) / RATE
    target = np.asarray(levels)[np.minimum((times // responsiveness.SECTION_S).astype(int), len(levels) - 1)]
    values = np.empty_like(times)
    state = levels[0]
    for index, goal in enumerate(target):
        state += (1 - math.exp(-1 / (RATE * tau))) * (goal - state)
        values[index] = state
    rng = np.random.default_rng(seed)
    return times, values + noise * rng.standard_normal(len(values))


def test_a_one_pole_step_covers_half_in_tau_ln2_and_ninety_percent_in_tau_ln10() -> None:
    tau = 2.0
    times, values = _one_pole_steps(levels=[0.2, 0.8, 0.2, 0.8], tau=tau)
    result = responsiveness.step_metrics(times=times, values=values, sections=4)
    assert result["steps_measured"] == 3
    assert result["t50_mean_s"] == pytest.approx(tau * math.log(2), abs=1 / RATE)
    assert result["t90_mean_s"] == pytest.approx(tau * math.log(10), abs=1 / RATE)
    assert result["mean_abs_step"] == pytest.approx(0.6, abs=1e-3)
    assert result["jitter"] < 0.005  # what is left of the step after 12 s = 6 time constants


def test_jitter_and_noise_measure_the_steady_spans_and_tiny_steps_are_left_out() -> None:
    times, values = _one_pole_steps(levels=[0.5, 0.5 + responsiveness.MIN_STEP / 2, 0.9], tau=0.5, noise=0.01)
    result = responsiveness.step_metrics(times=times, values=values, sections=3)
    assert result["steps_measured"] == 1 and "t50_s" not in result["steps"][0]
    assert result["jitter"] == pytest.approx(0.01, rel=0.2)
    assert result["noise"] == pytest.approx(0.01, rel=0.2)


# -- tuning: the files, the rule and the replay ------------------------------------------------------


def test_the_tuning_files_share_no_clip_with_the_benchmark_files(shared_data: Path) -> None:
    benchmark = responsiveness.benchmark_files(root=shared_data)
    tuning = responsiveness.tuning_files(root=shared_data)
    assert benchmark["energy"] == responsiveness.ENERGY_CLIPS
    used = [clip for clips in benchmark.values() for clip in clips]
    tuned = [clip for clips in tuning.values() for clip in clips]
    assert len(set(tuned)) == len(tuned) == 2 * len(tuning) * responsiveness.TUNE_PICKS_PER_SIDE
    assert not set(used) & set(tuned)
    assert all(len(clips) == 2 * responsiveness.TUNE_PICKS_PER_SIDE for clips in tuning.values())
    assert set(tuning) == {*responsiveness.TUNE_ENERGY_FILES, "valence_tune"}
    # the first two files are those of the first tuning (the further energy files were added after it)
    assert tuning["energy_tune"] == ("273", "154", "035", "001", "274", "241", "275", "018")
    assert tuning["valence_tune"] == ("007", "040", "013", "034", "006", "039", "008", "033")


def _row(*, jitter: tuple[float, float], delay: float, **settings) -> dict:
    row = {key: settings.get(key, 1.0) for key in responsiveness.TUNE_GRID}
    for out in responsiveness.TUNE_OUTPUTS:
        row[out] = {"t50_mean_s": delay / 2, "t90_mean_s": delay / 2, "jitter": 0.0}
    row["energy_tune energy"]["jitter"], row["energy_tune tension"]["jitter"] = jitter
    return row


def test_the_rule_takes_the_quickest_candidate_within_the_jitter_limits() -> None:
    limits = {"energy_tune energy": 0.02, "energy_tune tension": 0.01}
    rows = [
        _row(jitter=(0.03, 0.005), delay=1.0, smoothing=1.0),  # quickest, too jittery on energy
        _row(jitter=(0.01, 0.011), delay=2.0, smoothing=2.0),  # too jittery on tension
        _row(jitter=(0.019, 0.009), delay=4.0, smoothing=4.0),  # within: chosen
        _row(jitter=(0.001, 0.001), delay=6.0, smoothing=8.0),  # calmest, but slower
    ]
    assert responsiveness.choose(rows=rows, limits=limits)["smoothing"] == 4.0
    never = _row(jitter=(0.0, 0.0), delay=0.0, smoothing=16.0)
    never["valence_tune sad"]["t90_mean_s"] = None  # a step never reached 90 %: never the quickest
    assert responsiveness.choose(rows=[*rows, never], limits=limits)["smoothing"] == 4.0
    with pytest.raises(RuntimeError):
        responsiveness.choose(rows=rows[:2], limits=limits)


def test_the_jitter_bound_has_a_margin_unless_no_candidate_meets_it() -> None:
    v1 = {out: {"jitter": 0.02} for out in responsiveness.TUNE_JITTER_OUTPUTS}

    def row(share: float) -> dict:
        return {out: {"jitter": share * 0.02} for out in responsiveness.TUNE_JITTER_OUTPUTS}

    share, limits = responsiveness._jitter_limits(v1, rows=[[row(1.5)], [row(0.79), row(0.95)]])
    assert share == 0.8 and set(limits) == set(responsiveness.TUNE_JITTER_OUTPUTS)
    assert limits["energy_tune3 tension"] == pytest.approx(0.016)
    share, limits = responsiveness._jitter_limits(v1, rows=[[row(1.5)], [row(0.95)]])  # none within 0.8
    assert share == 1.0 and limits["energy_tune energy"] == pytest.approx(0.02)
    calm_on_two_files = row(0.5)
    calm_on_two_files["energy_tune2 energy"]["jitter"] = 0.03  # the bound holds on each file
    assert responsiveness._jitter_limits(v1, rows=[[calm_on_two_files]])[0] == 1.0
    assert not responsiveness._within(calm_on_two_files, limits=limits)


def test_the_goal_check_needs_the_delay_goal_on_every_energy_tuning_file() -> None:
    v1 = {out: {"jitter": 0.02} for out in responsiveness.TUNE_JITTER_OUTPUTS}

    def row(t50: float | None, jitter: float) -> dict:
        return {out: {"t50_mean_s": t50, "jitter": jitter} for out in responsiveness.TUNE_JITTER_OUTPUTS}

    quick_jittery, slow_calm, both = row(2.0, 0.05), row(3.0, 0.01), row(2.4, 0.019)
    one_slow = row(2.0, 0.01)
    one_slow["energy_tune3 tension"]["t50_mean_s"] = 2.6  # the goal holds on each file
    never = row(2.0, 0.01)
    never["energy_tune2 energy"]["t50_mean_s"] = None  # a step never got halfway
    goals = responsiveness.goal_check(rows=[quick_jittery, slow_calm, one_slow, never], chosen=slow_calm, v1_row=v1)
    assert not goals["chosen_meets_the_delay_goal"]
    assert goals["meeting_the_delay_goal"] == 1 and goals["meeting_both_goals"] == 0
    assert goals["calmest_meeting_the_delay_goal"] is quick_jittery
    assert goals["its_jitter_over_v1"] == pytest.approx(2.5)
    goals = responsiveness.goal_check(rows=[quick_jittery, both], chosen=both, v1_row=v1)
    assert goals["chosen_meets_the_delay_goal"] and goals["meeting_both_goals"] == 1
    assert goals["calmest_meeting_the_delay_goal"] is both
    # round 8: a pick that misses the delay goal gives way to the calmest candidate that meets it
    slow_goals = responsiveness.goal_check(rows=[quick_jittery, slow_calm, one_slow, never], chosen=slow_calm, v1_row=v1)
    assert responsiveness.adopted(pick=slow_calm, goals=slow_goals) is quick_jittery
    assert responsiveness.adopted(pick=both, goals=goals) is both
    none_quick = responsiveness.goal_check(rows=[slow_calm], chosen=slow_calm, v1_row=v1)
    assert responsiveness.adopted(pick=slow_calm, goals=none_quick) is slow_calm


@pytest.mark.parametrize("settings", [{"smoothing": 16.0, "follow": 160.0, "still_speed": 0.04, "change": 0.0},
                                      {"smoothing": 32.0, "follow": 0.0, "still_speed": 0.0, "change": 0.15}])
def test_the_replay_equals_the_worker(tmp_path: Path, settings: dict) -> None:
    """The tuning replays the smoother on a trace taken with smoothing off: it must give what the worker
    gives with the same settings (here on a synthetic 24 s file with a change in the middle, v2)."""
    import soundfile

    from mer_live.model import emotion_model as model_module

    rate = 16000
    times = np.arange(int(24 * rate)) / rate
    rng = np.random.default_rng(3)
    calm = 0.05 * np.sin(2 * np.pi * 220 * times)
    busy = 0.3 * rng.standard_normal(len(times)) * (np.sin(2 * np.pi * 4 * times) > 0)
    audio = np.where(times < 12.0, calm, busy).astype(np.float32)
    path = tmp_path / "change.wav"
    soundfile.write(str(path), audio, rate)
    model = Path(str(model_module.shipped_model_path("v2")))
    weight, bias = responsiveness._joint(model=model)
    raw = responsiveness.raw_trace(input_path=path, model=model, weight=weight, bias=bias)
    recorder = responsiveness._Recorder()
    from mer_live.model.emotion_model import EmotionModel
    from mer_live.live.source import FileSource
    from mer_live.live.worker import Worker

    loaded = EmotionModel(path=model)
    source = FileSource(path=path, fast=True)
    worker = Worker(source=source, model=loaded, sinks=[recorder], rate=responsiveness.RATE, smoothing_s=settings["smoothing"],
                    follow=settings["follow"], still_speed=settings["still_speed"], change=settings["change"])
    source.start()
    worker.run()
    source.close()
    worker.close()
    loaded.close()
    sent = np.clip(np.stack([row[1] for row in recorder.rows]), 0.0, 1.0)
    replayed = responsiveness.replay(raw, weight=weight, bias=bias, **responsiveness._full(settings))
    assert len(raw.times) == len(sent) > 200
    from mer_live.core import labels

    np.testing.assert_allclose(np.stack([replayed[name] for name in labels.EMOTIONS], axis=1), sent, atol=1e-9)
    moved = np.ptp(sent[:, labels.EMOTIONS.index("energy")])
    assert moved > 0.05  # the change in the music moved the output: the comparison is not of constants


def test_common_t50_compares_two_runs_on_the_steps_both_measured() -> None:
    new = {"steps": [{"at_s": 20.0, "t50_s": 1.0}, {"at_s": 40.0, "t50_s": 3.0}, {"at_s": 60.0}, {"at_s": 80.0, "t50_s": 9.0}]}
    old = {"steps": [{"at_s": 20.0, "t50_s": 2.0}, {"at_s": 40.0, "t50_s": 5.0}, {"at_s": 60.0, "t50_s": 4.0}, {"at_s": 80.0}]}
    assert responsiveness.common_t50(new, old) == (2.0, 3.5, [20.0, 40.0])
    assert responsiveness.common_t50({"steps": []}, old) == (None, None, [])


def test_a_pooling_copy_changes_only_the_pooling(tmp_path: Path) -> None:
    """``--pooling`` / ``--tune --poolings`` run temporary copies of v2's file that pool differently."""
    from mer_live.model import emotion_model as model_module
    from mer_live.model.emotion_model import EmotionModel

    shipped = Path(str(model_module.shipped_model_path("v2")))
    copy = responsiveness.with_pooling(model=shipped, patches=2, halflife_s=0.25, folder=tmp_path)
    # both float: the shipped file runs its INT8 pack by default, a temporary copy (another SHA) has none
    original, changed = EmotionModel(path=shipped, precision="float"), EmotionModel(path=copy, precision="float")
    try:
        assert (changed.pooling.patches, changed.pooling.halflife_s) == (2, 0.25)
        assert changed.pooling.patch_hop_frames == original.pooling.patch_hop_frames
        patch = np.random.default_rng(4).uniform(0.0, 3.0, original.input_shape).astype(np.float32)
        np.testing.assert_array_equal(changed.process(windows=patch).emotion, original.process(windows=patch).emotion)
    finally:
        original.close()
        changed.close()


@pytest.mark.parametrize("extra", [["--poolings", "1:0"], ["--tune", "--pooling", "1:0", "--poolings", "1:0"]])
def test_poolings_go_with_tune_and_without_pooling(extra: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        responsiveness.main(["--v1", "v1.onnx", "--v2", "v2.onnx", *extra])
    assert stopped.value.code == 2
    assert "--poolings goes with --tune" in capsys.readouterr().err


def test_the_tuning_keeps_issue_7s_rate(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        responsiveness.main(["--v1", "v1.onnx", "--v2", "v2.onnx", "--tune", "--rate", "4"])
    assert stopped.value.code == 2
    assert "--rate goes with the benchmark" in capsys.readouterr().err


def test_a_pooling_argument_is_patches_and_an_optional_halflife() -> None:
    assert responsiveness.pooling_arg("8:0.25") == (8, 0.25)
    assert responsiveness.pooling_arg("1:0") == responsiveness.pooling_arg("1") == (1, 0.0)
