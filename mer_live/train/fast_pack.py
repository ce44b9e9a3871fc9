"""Build a v2 model's INT8 pack (build time; needs ``onnx`` and ONNX Runtime's quantization tools).

``python -m mer_live.train.fast_pack [MODEL.onnx]`` (default: every shipped model with a v2 front-end) writes, beside the model,
the two graphs that :func:`mer_live.model.patch_model.load_pack` loads with ONNX Runtime alone:

* ``NAME.int8-local.onnx``: the frame-local branches (musicnn's timbral convolutions, most of the model's
  time), their convolutions quantized to INT8 (static, QDQ: unsigned 8-bit activations, signed 8-bit
  weights per output channel, MinMax ranges calibrated on ``CALIBRATION_CLIPS`` Soundtracks clips that the
  speed and parity benchmarks do not use, each also peak-normalised, see :func:`calibration_patches`);
  INT8 units (VNNI, AMX on x86; dot-product instructions on ARM) run them about 3 times faster;
* ``NAME.int8-rest.onnx``: the rest of the model, float.

Both graphs first get :func:`mer_live.model.graph_cut.rewrite_pooling` (max-pool before ReLU and batch
normalisation, the same values). The local graph's metadata (``mer_live.pack``) records the SHA-256 of the
model file it was cut from: a model that changes without its pack being rebuilt runs in float
(``tests/test_fast_pack.py`` fails until the pack is rebuilt). The pack keeps the model's licence notice.

Whether the pack is close enough to the float model to be the default is ``benchmarks/parity.py``'s call
(Pearson r >= 0.995 per output and at most 0.02 apart on the 0-1 scale, clip level, Soundtracks and 4Q).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

from mer_live.audio import load_audio
from mer_live.features import mel
from mer_live.model import emotion_model, graph_cut, patch_model
from mer_live.train import soundtracks

PRECISION = "int8"
CALIBRATION_CLIPS = tuple(f"{number:03d}" for number in range(41, 361, 20))  # 16 clips, none of the first 40
CALIBRATION_HOP_FRAMES = 62  # analyze's hop
CALIBRATION_BATCH = 16
META_LICENCE = "mer_live.licence"


def calibration_patches(*, clip_ids: tuple[str, ...], offset: int) -> np.ndarray:
    """The heard frames ``(num_patches, 187 - offset, 96)`` of every analyze patch of the clips ``clip_ids``,
    each clip as it is and peak-normalised to full scale: film soundtracks are quieter than mastered pop
    (log-mel up to 5.3 against 6.6 on 4Q-dev), and a range calibrated on them alone clips louder music."""
    audio_dir = soundtracks.data_dir() / "soundtracks" / "audio"
    patches = []
    for clip_id in clip_ids:
        samples = load_audio(path=audio_dir / f"{clip_id}.mp3", target_rate=mel.SAMPLE_RATE)
        for version in (samples, samples / max(float(np.max(np.abs(samples))), 1e-6)):  # as is, and at full scale
            frames = mel.analyse(samples=version)
            starts = mel.patch_starts(total_frames=len(frames), hop_frames=CALIBRATION_HOP_FRAMES)
            patches.extend(mel.loop_pad(frames=frames[start : start + mel.PATCH_FRAMES])[offset:] for start in starts)
    return np.stack(patches).astype(np.float32)


def shipped_v2_models() -> list[Path]:
    """The shipped models with a v2 front-end (``mer_live.pooling`` metadata): the ones a pack is built for."""
    import onnx

    found = []
    for name in emotion_model.SHIPPED_MODELS:
        path = Path(str(emotion_model.shipped_model_path(name)))
        if any(prop.key == emotion_model.META_POOLING for prop in onnx.load(str(path), load_external_data=False).metadata_props):
            found.append(path)
    return found


def _quantize(*, local: bytes, input_name: str, patches: np.ndarray, folder: Path) -> bytes:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(patches[i : i + CALIBRATION_BATCH] for i in range(0, len(patches), CALIBRATION_BATCH))

        def get_next(self) -> dict | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    source, target = folder / "local.onnx", folder / "local.int8.onnx"
    source.write_bytes(local)
    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["Conv"])
    return target.read_bytes()


def _with_metadata(model_bytes: bytes, metadata: dict[str, str]) -> bytes:
    import onnx

    model = onnx.load_from_string(model_bytes)
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def build(model_path: Path, *, clip_ids: tuple[str, ...] = CALIBRATION_CLIPS) -> dict[str, Path]:
    """Write the INT8 pack of the model at ``model_path``; returns its files by part."""
    import onnx

    model_bytes = model_path.read_bytes()
    model = onnx.load_from_string(model_bytes)
    graph_cut.rewrite_pooling(model)
    heard = graph_cut.heard_frames(model)
    graph_cut.rewrite_temporal(model, frames=heard)
    cut = graph_cut.cut(model, min_heard=max(shift or 0 for shift in patch_model.CHECK_SHIFTS))
    if cut is None:
        raise SystemExit(f"{model_path}: no frame-local branches to pack")
    patches = calibration_patches(clip_ids=clip_ids, offset=cut.offset)
    with tempfile.TemporaryDirectory(prefix="mer-live-pack-") as folder:
        local = _quantize(local=cut.local, input_name=cut.local_input, patches=patches, folder=Path(folder))
    notice = {prop.key: prop.value for prop in model.metadata_props if prop.key == META_LICENCE}
    calibration = {"clips": list(clip_ids), "versions": ["as is", "peak-normalised"], "patches": len(patches),
                   "method": "MinMax", "format": "QDQ u8/s8 per-channel"}
    meta = patch_model.pack_metadata(source_sha256=hashlib.sha256(model_bytes).hexdigest(), precision=PRECISION,
                                     cut=cut, calibration=calibration)
    parts = {"local": _with_metadata(local, notice | {patch_model.META_PACK: meta}), "rest": _with_metadata(cut.rest, notice)}
    paths = patch_model.pack_paths(model_path, precision=PRECISION)
    for part, data in parts.items():
        paths[part].write_bytes(data)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mer_live.train.fast_pack", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="v2-kind model files (default: every shipped one)")
    args = parser.parse_args(argv)
    for path in args.models or shipped_v2_models():
        for part, written in build(path).items():
            print(f"{path.name}: {part} -> {written} ({written.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
