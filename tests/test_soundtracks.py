"""The Soundtracks reader: BOM handling, units, the set-2 join, the reference tables and the data hash."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mer_live.core import labels
from mer_live.train import soundtracks

HEADER1 = ["number", *labels.EMOTIONS, "TARGET"]


def _write_set1(*, folder: Path, rows: list[list[str]]) -> None:
    target = folder / soundtracks.SOUNDTRACKS_DIR
    target.mkdir(parents=True, exist_ok=True)
    with (target / soundtracks.SET1_FILE).open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER1)
        writer.writerows(rows)


def test_bom_file_is_parsed_and_scaled_to_model_units(tmp_path: Path) -> None:
    _write_set1(folder=tmp_path, rows=[["002", "1", "2", "3", "4", "5", "6", "7", "9", "SAD"],
                                       ["001", "9", "8", "7", "6", "5", "4", "3", "1", "HAPPY"]])
    data = soundtracks.load(root=tmp_path)
    assert data.ids == ["001", "002"]  # the BOM did not end up in the id column, and ids are sorted
    np.testing.assert_allclose(data.clips[0].ratings, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.1])
    assert data.clips[1].target == "SAD"
    assert data.clips[0].path == tmp_path / "soundtracks" / "audio" / "001.mp3"


def test_missing_rating_is_a_data_error(tmp_path: Path) -> None:
    _write_set1(folder=tmp_path, rows=[["001", "1", "2", "3", "4", "5", "6", "7", "", "SAD"]])
    with pytest.raises(soundtracks.DataError, match="mean_ratings_set1.csv"):
        soundtracks.load(root=tmp_path)


def test_missing_data_dir_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(soundtracks.DataError, match="MER_DATA_DIR"):
        soundtracks.load(root=tmp_path / "nowhere")


def test_data_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MER_DATA_DIR", str(tmp_path))
    assert soundtracks.data_dir() == tmp_path
    monkeypatch.delenv("MER_DATA_DIR")
    assert soundtracks.data_dir().parts[-2:] == ("shared", "data")


def test_real_set1(shared_data: Path) -> None:
    data = soundtracks.load(root=shared_data)
    assert len(data.clips) == 360
    assert data.ids[0] == "001" and data.ids[-1] == "360"
    ratings = data.ratings
    assert ratings.shape == (360, labels.NUM_EMOTIONS)
    assert ratings.min() >= labels.EMOTION_MODEL_MIN - 1e-9
    assert ratings.max() <= labels.EMOTION_MODEL_MIN + labels.EMOTION_MODEL_SPAN + 1e-9
    # clip 001: 4.83,6.83,3.17,1.00,1.00,7.33,1.00,1.00 in the file
    np.testing.assert_allclose(ratings[0], [0.483, 0.683, 0.317, 0.1, 0.1, 0.733, 0.1, 0.1])
    assert all(clip.path.is_file() for clip in data.clips)


def test_human_ceiling_on_real_panels(shared_data: Path) -> None:
    data = soundtracks.load(root=shared_data)
    set2 = soundtracks.load_set2(root=shared_data)
    assert len(set2) == 110
    ceiling = soundtracks.human_ceiling(data=data, set2=set2)
    assert ceiling["num_clips"] == 110
    assert 0.89 <= ceiling["mean"] <= 0.93  # the data README: about 0.91


def test_reference_tables_are_oriented_by_label(shared_data: Path) -> None:
    weight = soundtracks.poster_weights(root=shared_data)
    assert weight.shape == (labels.NUM_EMOTIONS, labels.NUM_MID_LEVELS)  # nn.Linear(7, 8).weight
    e, m = labels.EMOTIONS.index, labels.MID_LEVELS.index
    assert weight[e("valence"), m("melodiousness")] == pytest.approx(0.48)
    assert weight[e("sad"), m("articulation")] == pytest.approx(-0.54)
    assert weight[e("fear"), m("dissonance")] == pytest.approx(0.57)
    corr = soundtracks.mid_emotion_correlation(root=shared_data)
    assert corr.shape == (labels.NUM_MID_LEVELS, labels.NUM_EMOTIONS)
    assert corr[m("minorness"), e("happy")] == pytest.approx(-0.73)
    paper = soundtracks.paper_results(root=shared_data)
    assert paper["A2Mid2E-Joint"]["avg"] == pytest.approx(0.75)
    assert paper["A2E"]["valence"] == pytest.approx(0.81)


def test_data_hash_tracks_ratings_and_clip_list(shared_data: Path, tmp_path: Path) -> None:
    original = soundtracks.load(root=shared_data)
    assert soundtracks.data_hash(data=original) == soundtracks.data_hash(data=soundtracks.load(root=shared_data))
    fewer = original.subset(indices=list(range(359)))
    assert soundtracks.data_hash(data=fewer) != soundtracks.data_hash(data=original)
    copy_root = tmp_path / "copy"
    (copy_root / "soundtracks").mkdir(parents=True)
    shutil.copy(shared_data / "soundtracks" / "SHA256SUMS", copy_root / "soundtracks" / "SHA256SUMS")
    text = (shared_data / "soundtracks" / soundtracks.SET1_FILE).read_text(encoding="utf-8-sig")
    (copy_root / "soundtracks" / soundtracks.SET1_FILE).write_text(
        text.replace("001,4.83,", "001,4.84,", 1), encoding="utf-8-sig"
    )
    changed = soundtracks.load(root=copy_root)
    assert soundtracks.data_hash(data=changed) != soundtracks.data_hash(data=original)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=3, max_size=40),
    st.floats(min_value=0.1, max_value=10.0),
    st.floats(min_value=-5.0, max_value=5.0),
)
def test_pearson_is_bounded_symmetric_and_affine_invariant(values: list[float], scale: float, shift: float) -> None:
    x = np.asarray(values)
    y = np.roll(x, 1) + np.arange(len(x))
    r = soundtracks.pearson(x=x, y=y)
    if math.isnan(r):
        assert np.ptp(x) == 0.0 or np.ptp(y) == 0.0
        return
    assert -1.0 - 1e-9 <= r <= 1.0 + 1e-9
    assert soundtracks.pearson(x=y, y=x) == pytest.approx(r, abs=1e-9)
    if np.ptp(x) > 1e-6 * max(1.0, float(np.max(np.abs(x)))):
        assert soundtracks.pearson(x=scale * x + shift, y=y) == pytest.approx(r, abs=1e-6)
