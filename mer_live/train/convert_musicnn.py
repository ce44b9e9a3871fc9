"""One-off conversion of musicnn's ``MTT_musicnn`` or ``MSD_musicnn`` TensorFlow checkpoint to ONNX (needs TensorFlow).

This is the only file of mer-live that imports TensorFlow. It runs once, in a separate virtual
environment that is not the project's (TensorFlow never enters the runtime, the tests or CI)::

    python3 -m venv .tfvenv
    .tfvenv/bin/pip install tensorflow-cpu==2.15.1 'numpy<2' tf2onnx==1.17.0 onnx onnxruntime librosa
    .tfvenv/bin/pip install --no-deps musicnn==0.1.0
    .tfvenv/bin/python mer_live/train/convert_musicnn.py --out models/musicnn [--model MSD_musicnn]

It writes, into ``--out`` (``mtt`` below is ``msd`` for ``MSD_musicnn``, the same network trained on the
Million Song Dataset's 50 most frequent Last.fm tags):

* ``musicnn_mtt.onnx``: input ``mel`` ``(batch, 187, 96)`` float32 (musicnn's log-mel patch, time-major);
  outputs ``max_pool`` and ``mean_pool`` ``(batch, 753)`` (the temporal pooling of the mid-end),
  ``penultimate`` ``(batch, 200)`` (the back-end's batch-normalised dense layer) and ``taggram``
  ``(batch, 50)`` (sigmoid tag probabilities, MagnaTagATune tags);
* ``musicnn_mtt_backend.npz``: the back-end weights (batch norm over ``concat(max_pool, mean_pool)``, dense
  1506->200 with ReLU, batch norm, dense 200->50), so the training code can fine-tune them in torch;
* ``musicnn_mtt.check.json``: the largest ONNX Runtime vs TensorFlow difference per output, on real music,
  relative to the output's largest magnitude (at least 1).

The script verifies ONNX Runtime against TensorFlow on the patches of ``--check-audio`` (or on noise) and
fails when any output differs by more than ``TOLERANCE``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

MODELS = {"MTT_musicnn": "mtt", "MSD_musicnn": "msd"}  # checkpoint in the wheel -> file stem suffix
NUM_TAGS = 50
PATCH_FRAMES = 187
NUM_BANDS = 96
OPSET = 17
BATCH_AXIS = "batch"
TOLERANCE = 1e-5
INPUT = "mel"
OUTPUTS = ("max_pool", "mean_pool", "penultimate", "taggram")
BATCH_NORM_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default
CHECK_SEED = 7


def file_names(*, model: str) -> dict[str, str]:
    """The files written for ``model``: ``onnx``, ``backend`` and ``check`` names."""
    stem = f"musicnn_{MODELS[model]}"
    return {"onnx": f"{stem}.onnx", "backend": f"{stem}_backend.npz", "check": f"{stem}.check.json"}


def _graph(*, model: str):
    """Build ``model`` on a placeholder, restore the packaged checkpoint; return (session, tensors)."""
    import musicnn
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, NUM_BANDS], name=INPUT)
        with tf.name_scope("model"):
            logits, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(
                x, False, model, NUM_TAGS)
        outputs = {
            "max_pool": tf.identity(max_pool, name="max_pool"),
            "mean_pool": tf.identity(mean_pool, name="mean_pool"),
            "penultimate": tf.identity(penultimate, name="penultimate"),
            "taggram": tf.identity(tf.nn.sigmoid(logits), name="taggram"),
        }
        session = tf.compat.v1.Session(graph=graph)
        session.run(tf.compat.v1.global_variables_initializer())
        checkpoint = Path(musicnn.__file__).parent / model
        tf.compat.v1.train.Saver().restore(session, str(checkpoint) + "/")
    return session, graph, x, outputs


def _backend_weights(*, session, graph) -> dict[str, np.ndarray]:
    """The back-end's variables by role (the last two batch norms and the two dense layers of the graph)."""
    import tensorflow as tf

    with graph.as_default():
        variables = {v.name: v for v in tf.compat.v1.global_variables()}
    dense = sorted(name.rsplit("/", 1)[0] for name, v in variables.items()
                   if name.endswith("/kernel:0") and len(v.shape) == 2)
    norms = sorted({name.rsplit("/", 1)[0] for name in variables if "batch_normalization" in name},
                   key=lambda scope: int(scope.rsplit("_", 1)[-1]) if scope.rsplit("_", 1)[-1].isdigit() else 0)
    if len(dense) != 2:
        raise RuntimeError(f"expected two dense layers in the back-end, found {dense}")
    first_dense, second_dense = sorted(dense, key=lambda s: variables[s + "/kernel:0"].shape[0], reverse=True)
    norm_in, norm_out = norms[-2], norms[-1]
    values = {}
    for prefix, scope in (("bn_in", norm_in), ("bn_out", norm_out)):
        for part in ("gamma", "beta", "moving_mean", "moving_variance"):
            values[f"{prefix}_{part}"] = session.run(variables[f"{scope}/{part}:0"])
    for prefix, scope in (("dense", first_dense), ("logits", second_dense)):
        values[f"{prefix}_kernel"] = session.run(variables[f"{scope}/kernel:0"])
        values[f"{prefix}_bias"] = session.run(variables[f"{scope}/bias:0"])
    values["epsilon"] = np.array(BATCH_NORM_EPSILON)
    if values["bn_in_gamma"].shape != (1506,) or values["dense_kernel"].shape != (1506, 200):
        raise RuntimeError("unexpected back-end shapes")
    return values


def interleave(*, max_pool: np.ndarray, mean_pool: np.ndarray) -> np.ndarray:
    """musicnn's back-end input ``(batch, 1506)``: ``max_pool`` and ``mean_pool`` ``(batch, 753)`` interleaved.

    musicnn concatenates the two poolings on a trailing axis and flattens, so the order is
    ``max[0], mean[0], max[1], mean[1], ...``.
    """
    return np.stack([max_pool, mean_pool], axis=-1).reshape(len(max_pool), -1)


def _backend_numpy(*, weights: dict[str, np.ndarray], max_pool: np.ndarray, mean_pool: np.ndarray) -> dict:
    """The back-end recomputed from the exported weights (a check that the .npz is complete and ordered)."""
    eps = float(weights["epsilon"])

    def norm(x: np.ndarray, prefix: str) -> np.ndarray:
        scale = weights[f"{prefix}_gamma"] / np.sqrt(weights[f"{prefix}_moving_variance"] + eps)
        return (x - weights[f"{prefix}_moving_mean"]) * scale + weights[f"{prefix}_beta"]

    pooled = norm(interleave(max_pool=max_pool, mean_pool=mean_pool), "bn_in")
    penultimate = norm(np.maximum(pooled @ weights["dense_kernel"] + weights["dense_bias"], 0.0), "bn_out")
    taggram = 1.0 / (1.0 + np.exp(-(penultimate @ weights["logits_kernel"] + weights["logits_bias"])))
    return {"penultimate": penultimate, "taggram": taggram}


def _check_patches(*, audio: Path | None) -> np.ndarray:
    """Real log-mel patches of ``audio`` (librosa, as musicnn computes them), or noise patches."""
    if audio is None:
        rng = np.random.default_rng(CHECK_SEED)
        return rng.uniform(0.0, 3.0, (4, PATCH_FRAMES, NUM_BANDS)).astype(np.float32)
    import librosa

    samples, rate = librosa.load(str(audio), sr=16000)
    mel = librosa.feature.melspectrogram(y=samples, sr=rate, n_fft=512, hop_length=256, n_mels=NUM_BANDS).T
    mel = np.log10(1.0 + 10000.0 * mel).astype(np.float32)
    starts = range(0, mel.shape[0] - PATCH_FRAMES + 1, PATCH_FRAMES // 2)
    return np.stack([mel[s : s + PATCH_FRAMES] for s in starts])


def convert(*, out: Path, check_audio: Path | None, model: str = "MTT_musicnn") -> dict:
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    names = file_names(model=model)
    session, graph, x, outputs = _graph(model=model)
    weights = _backend_weights(session=session, graph=graph)
    frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
        session, graph.as_graph_def(), list(outputs))
    proto, _ = tf2onnx.convert.from_graph_def(
        frozen, input_names=[f"{INPUT}:0"], output_names=[f"{name}:0" for name in OUTPUTS], opset=OPSET)
    # plain names for the graph's input and outputs ("mel", "max_pool", ...), not TensorFlow's "name:0"
    renames = {f"{INPUT}:0": INPUT, **{f"{name}:0": name for name in OUTPUTS}}
    for node in proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in list(proto.graph.input) + list(proto.graph.output):
        value.name = renames.get(value.name, value.name)
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_AXIS
    proto.producer_name = "mer-live convert_musicnn (tf2onnx)"
    proto.doc_string = (f"{model} by Jordi Pons and Xavier Serra, Music Technology Group, Universitat Pompeu "
                        "Fabra (musicnn 0.1.0, ISC licence), converted to ONNX")
    onnx.checker.check_model(proto)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out / names["onnx"]))
    np.savez(out / names["backend"], **weights)

    patches = _check_patches(audio=check_audio)
    reference = dict(zip(OUTPUTS, session.run([outputs[n] for n in OUTPUTS], {x: patches})))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    ort = onnxruntime.InferenceSession(str(out / names["onnx"]), options, providers=["CPUExecutionProvider"])
    converted = dict(zip(OUTPUTS, ort.run(list(OUTPUTS), {INPUT: patches})))
    rebuilt = _backend_numpy(weights=weights, max_pool=reference["max_pool"], mean_pool=reference["mean_pool"])
    def difference(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max())))

    report = {
        "model": model,
        "num_patches": int(len(patches)),
        "check_audio": check_audio.name if check_audio else "uniform noise",
        "onnx_vs_tensorflow_max_rel": {n: difference(converted[n], reference[n]) for n in OUTPUTS},
        "backend_npz_vs_tensorflow_max_rel": {
            n: difference(rebuilt[n], reference[n]) for n in ("penultimate", "taggram")},
        "tolerance": TOLERANCE,
        "shapes": {n: list(converted[n].shape) for n in OUTPUTS},
    }
    (out / names["check"]).write_text(json.dumps(report, indent=1))
    worst = max(*report["onnx_vs_tensorflow_max_rel"].values(), *report["backend_npz_vs_tensorflow_max_rel"].values())
    if worst > TOLERANCE:
        raise RuntimeError(f"conversion differs from TensorFlow by {worst:g} (> {TOLERANCE:g}): {report}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert a musicnn checkpoint to ONNX (one-off).")
    parser.add_argument("--model", choices=sorted(MODELS), default="MTT_musicnn", help="the packaged checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--check-audio", type=Path, help="audio file whose patches verify the conversion")
    args = parser.parse_args(argv)
    report = convert(out=args.out, check_audio=args.check_audio, model=args.model)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
