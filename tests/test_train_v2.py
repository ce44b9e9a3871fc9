"""v2 training pieces that need no data run: folds, pooling, the ported musicnn back-end (fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mer_live.train import embeddings, folds, heads, pooling
from mer_live.train.convert_musicnn import interleave


def test_group_folds_keep_every_group_in_one_fold_and_balance_sizes() -> None:
    rng = np.random.default_rng(3)
    groups = [f"album{int(g)}" for g in rng.integers(0, 40, 300)]
    test_folds = folds.make_group_folds(groups=groups, num_folds=5, seed=2019)
    assert sorted(np.concatenate(test_folds).tolist()) == list(range(300))
    owners = {}
    for index, fold in enumerate(test_folds):
        for i in fold:
            assert owners.setdefault(groups[i], index) == index
    sizes = [len(f) for f in test_folds]
    assert max(sizes) - min(sizes) <= max(groups.count(g) for g in set(groups))
    assert [f.tolist() for f in folds.make_group_folds(groups=groups, num_folds=5, seed=2019)] == [f.tolist() for f in test_folds]


def test_album_folds_of_the_soundtracks(shared_data: Path) -> None:
    from mer_live.train import soundtracks

    dataset = soundtracks.load(root=shared_data)
    albums = folds.albums(dataset=dataset)
    test_folds = folds.protocol_folds(dataset=dataset, protocol=folds.ALBUM, num_folds=5, seed=2019)
    seen = [{albums[i] for i in fold} for fold in test_folds]
    assert all(not (a & b) for k, a in enumerate(seen) for b in seen[k + 1 :])
    assert sum(len(f) for f in test_folds) == len(dataset.clips) == 360
    with pytest.raises(ValueError, match="unknown CV protocol"):
        folds.protocol_folds(dataset=dataset, protocol="random", num_folds=5, seed=1)


def test_recency_weights_and_streamed_pooling() -> None:
    weights = pooling.recency_weights(count=3, hop_s=0.5, halflife_s=0.5)
    np.testing.assert_allclose(weights, np.array([0.25, 0.5, 1.0]) / 1.75)
    np.testing.assert_allclose(pooling.recency_weights(count=4, hop_s=0.5, halflife_s=0.0), np.full(4, 0.25))
    rows = np.arange(10, dtype=np.float64)[:, None]
    pooled = pooling.pool_stream(rows=rows, patches=2, hop_s=0.5, halflife_s=0.0)
    np.testing.assert_allclose(pooled[:, 0], [0.0, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5])


def test_longer_pooling_follows_a_step_later() -> None:
    quick = pooling.step_times(patches=8, hop_s=0.496, halflife_s=0.5, patch_s=2.992)
    slow = pooling.step_times(patches=8, hop_s=0.496, halflife_s=2.0, patch_s=2.992)
    one = pooling.step_times(patches=1, hop_s=0.496, halflife_s=0.0, patch_s=2.992)
    assert one["t50_s"] < quick["t50_s"] < slow["t50_s"]
    assert quick["t50_s"] < quick["t90_s"]
    assert 1.5 < one["t50_s"] < 2.0  # half a 3 s patch, plus on average half a patch hop


@pytest.mark.parametrize("backbone", sorted(embeddings.BACKBONES))
def test_ported_backend_reproduces_the_backbone_penultimate_layer(backbone: str) -> None:
    """The torch back-end (from musicnn_<backbone>_backend.npz) on the backbone's pools equals its penultimate
    output, and the two checkpoints are different networks."""
    rng = np.random.default_rng(0)
    mel = rng.uniform(0.0, 3.0, (3, embeddings.PATCH_FRAMES, embeddings.NUM_BANDS)).astype(np.float32)
    out = embeddings.Backbone(path=embeddings.backbone_path(backbone=backbone)).process(batch=mel)
    others = [embeddings.Backbone(path=path).process(batch=mel) for name, path in embeddings.BACKBONES.items() if name != backbone]
    assert all(np.abs(other.penultimate - out.penultimate).max() > 1e-2 for other in others)
    pools = interleave(max_pool=out.max_pool, mean_pool=out.mean_pool)
    np.testing.assert_array_equal(pools, heads.interleaved(clip=out))
    with torch.no_grad():
        penultimate = heads.Backend(backbone=backbone)(torch.from_numpy(pools)).numpy()
    np.testing.assert_allclose(penultimate, out.penultimate, atol=1e-4 * max(1.0, float(np.abs(out.penultimate).max())))


def test_descriptor_targets_share_the_pseudo_targets_units() -> None:
    rng = np.random.default_rng(3)
    values = rng.standard_normal((50, 7)) * 5.0 + 2.0
    mid = rng.uniform(0.1, 1.0, (50, 7))
    targets = heads.descriptor_targets(descriptors=values, mid_targets=mid)
    np.testing.assert_allclose(targets.mean(axis=0), mid.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(targets.std(axis=0), mid.std(axis=0), atol=1e-12)
    np.testing.assert_allclose([np.corrcoef(targets[:, k], values[:, k])[0, 1] for k in range(7)], 1.0, atol=1e-12)


def test_descriptor_weight_without_descriptors_is_refused() -> None:
    config = heads.HeadConfig(kind="frozen", descriptor_loss_weight=1.0)
    with pytest.raises(ValueError, match="descriptors"):
        heads.train_head(config=config, sets={}, ratings=np.zeros((4, 8)), train_indices=np.arange(4),
                         val_indices=np.arange(0), poster_weight=np.zeros((8, 7)), mid_correlation=np.zeros((7, 8)))


def test_declared_choice_prefers_validity_within_the_tolerance() -> None:
    from mer_live.train.embedding_cv import declared_choice

    r = {"a": 0.770, "b": 0.762, "c": 0.740}
    assert declared_choice(r=r, passing={"a": 2, "b": 4, "c": 7}) == "b"  # c is too far below the best r
    assert declared_choice(r=r, passing={"a": 3, "b": 3, "c": 7}) == "a"  # ties by r
    assert declared_choice(r={"a": float("nan"), "b": 0.1}, passing={"a": 7, "b": 0}) == "b"  # nan r: never close


@pytest.mark.parametrize("hidden", [0, 4])
def test_merged_heads_average_the_mid_level_outputs_and_keep_one_joint_layer(hidden: int) -> None:
    torch.manual_seed(0)
    nets = [heads.PatchHead(kind="frozen", hidden=hidden, dropout=0.3) for _ in range(3)]
    for net in nets:
        with torch.no_grad():
            net.feature_mean.fill_(0.5)
            net.feature_std.fill_(2.0)
            net.emotion_head.weight.normal_()
        net.eval()
    merged = heads.merge_heads(nets)
    x = torch.randn(5, embeddings.PENULTIMATE_SIZE)
    with torch.no_grad():
        mid, emotion = merged(x)
        mids = torch.stack([net(x)[0] for net in nets])
    torch.testing.assert_close(mid, mids.mean(dim=0), atol=1e-5, rtol=0)
    weight = torch.stack([net.emotion_head.weight for net in nets]).mean(dim=0)
    bias = torch.stack([net.emotion_head.bias for net in nets]).mean(dim=0)
    torch.testing.assert_close(emotion, mid @ weight.T + bias, atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        heads.HeadConfig(kind="finetune", seeds=2)


def _tiny_head(*, descriptors: np.ndarray, features: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """A 2-epoch frozen head on 12 synthetic clips, descriptor targets pulling ``features`` only."""
    rng = np.random.default_rng(5)
    clips = [embeddings.ClipEmbeddings(max_pool=np.zeros((3, embeddings.POOL_SIZE), np.float32),
                                       mean_pool=np.zeros((3, embeddings.POOL_SIZE), np.float32),
                                       penultimate=rng.standard_normal((3, embeddings.PENULTIMATE_SIZE)).astype(np.float32))
             for _ in range(12)]
    ratings = rng.uniform(0.2, 0.8, (12, 8))
    config = heads.HeadConfig(kind="frozen", max_epochs=2, batch_clips=4, descriptor_loss_weight=1.0,
                              descriptor_features=features)
    result = heads.train_head(config=config, sets={"clean": clips}, ratings=ratings, train_indices=np.arange(12),
                              val_indices=np.arange(0), poster_weight=rng.standard_normal((8, 7)) * 0.1,
                              mid_correlation=rng.uniform(-0.5, 0.5, (7, 8)), descriptors=descriptors)
    return result.net.state_dict()


def test_descriptor_targets_pull_only_the_named_features() -> None:
    descriptors = np.random.default_rng(8).standard_normal((12, 7))
    changed = descriptors.copy()
    changed[:, 0] = changed[::-1, 0]  # melodiousness's descriptor reordered: not pulled, so no effect
    pulled = ("articulation", "minorness")
    base = _tiny_head(descriptors=descriptors, features=pulled)
    for name, value in _tiny_head(descriptors=changed, features=pulled).items():
        torch.testing.assert_close(value, base[name], rtol=0, atol=0)
    changed[:, 1] = changed[::-1, 1]  # articulation's: pulled, so the head changes
    moved = _tiny_head(descriptors=changed, features=pulled)
    assert any(not torch.equal(moved[name], base[name]) for name in base)
    everything = _tiny_head(descriptors=descriptors, features=())
    assert any(not torch.equal(everything[name], base[name]) for name in base)


def test_descriptor_features_are_checked_and_recorded_only_when_named() -> None:
    with pytest.raises(ValueError, match="unknown mid-level features loudness"):
        heads.HeadConfig(descriptor_features=("loudness",))
    assert "descriptor_features" not in heads.HeadConfig().to_dict()  # the records written before the option
    assert heads.HeadConfig(descriptor_features=["minorness"]).to_dict()["descriptor_features"] == ["minorness"]


def test_a_shortened_backbone_hears_only_the_last_frames_of_a_patch(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    mel = rng.uniform(0.0, 3.0, (2, embeddings.PATCH_FRAMES, embeddings.NUM_BANDS)).astype(np.float32)
    whole = embeddings.Backbone().process(batch=mel)
    embeddings.shorten_backbone(source=embeddings.BACKBONE_PATH, target=tmp_path / "all.onnx",
                                context_frames=embeddings.PATCH_FRAMES)
    same = embeddings.Backbone(path=tmp_path / "all.onnx").process(batch=mel)
    np.testing.assert_array_equal(same.penultimate, whole.penultimate)
    embeddings.shorten_backbone(source=embeddings.BACKBONE_PATH, target=tmp_path / "short.onnx", context_frames=94)
    short = embeddings.Backbone(path=tmp_path / "short.onnx")
    heard = short.process(batch=mel)
    changed = mel.copy()
    changed[:, : embeddings.PATCH_FRAMES - 94] = 0.0  # the frames before the last 94 are not heard
    np.testing.assert_array_equal(short.process(batch=changed).penultimate, heard.penultimate)
    changed[:, -1] += 1.0
    assert not np.array_equal(short.process(batch=changed).penultimate, heard.penultimate)
    assert np.abs(heard.penultimate - whole.penultimate).max() > 1e-3  # another context, other embeddings
    # the back-end (convolutions over time, then max and mean over time) of the ported torch layers agrees
    with torch.no_grad():
        penultimate = heads.Backend()(torch.from_numpy(heads.interleaved(clip=heard))).numpy()
    np.testing.assert_allclose(penultimate, heard.penultimate, atol=1e-4 * max(1.0, float(np.abs(heard.penultimate).max())))
    with pytest.raises(ValueError, match="context_frames"):
        embeddings.shorten_backbone(source=embeddings.BACKBONE_PATH, target=tmp_path / "x.onnx", context_frames=0)


def test_context_frames_key_the_embedding_sets() -> None:
    assert heads.HeadConfig().set_key("aug1") == "aug1"
    assert heads.HeadConfig(context_frames=94).set_key("aug1") == "aug1@94"
    assert "context_frames" not in heads.HeadConfig().to_dict()
    assert heads.HeadConfig(context_frames=94).to_dict()["context_frames"] == 94
    for wrong in ({"context_frames": 0}, {"context_frames": 188}):
        with pytest.raises(ValueError, match="context_frames"):
            heads.HeadConfig(**wrong)


def test_the_backbone_keys_the_embedding_sets() -> None:
    assert heads.HeadConfig(backbone="mtt").set_key("clean") == "clean"  # the sets cached before the option
    assert heads.HeadConfig(backbone="msd", context_frames=94).set_key("aug1") == "msd:aug1@94"
    assert "backbone" not in heads.HeadConfig().to_dict()
    assert heads.HeadConfig(backbone="msd").to_dict()["backbone"] == "msd"
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        heads.HeadConfig(backbone="vgg")


def test_an_embedding_set_is_named_by_its_key_while_it_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    from mer_live.train import cache

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))  # the shortened backbone is built here
    assert embeddings.load_set(paths=[], set_name="aug1", context_frames=94, backbone="msd", progress=True) == []
    assert "embeddings msd:aug1@94" in capsys.readouterr().err
