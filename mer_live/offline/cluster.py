"""``mer-live analyze --ray [ADDRESS]``: the same analysis on a Ray cluster, with Ray Data.

Needs the ``ray`` extra (``pip install 'mer-live[ray]'``) and mer-live installed on every node, with the
audio files at the same paths on every node (a shared file system). Only ``mer-live analyze --ray``
imports this module; the daemon never does.

The pipeline is streaming, so memory stays bounded for any catalogue and any file length:

1. the driver lists the files still to do (one file per block);
2. decode tasks on the workers read and decode each file in blocks and run the model's front-end
   (:mod:`mer_live.offline.recipe`), yielding one row per batch of windows (the model inputs, as ``.npy`` bytes);
3. an actor pool runs the model: one ONNX Runtime session per actor, loaded once, one call per batch;
4. the driver gathers each file's batches (small: 15 values per window) and, once a file is complete,
   yields its :class:`mer_live.offline.catalogue.FileResult`, which goes to the same journal and outputs as the
   single-machine path. The per-file statistics are accumulated in window order, exactly as there, so the
   results are identical.

Ray retries the tasks and restarts the actors of a node that dies; a batch that arrives twice is dropped
by its (file, batch index), so every file is written exactly once.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mer_live.offline.catalogue import FileKey, FileResult, RunningStats, WindowValues, file_key, window_ends
from mer_live.audio import AudioFileError, FileDecoder
from mer_live.offline.recipe import DEFAULT_BATCH_WINDOWS, NUM_VALUES, Recipe, WindowModel

CPUS_PER_TASK = 1
CPUS_PER_ACTOR = 1


class ClusterError(RuntimeError):
    """A Ray cluster that cannot be reached or used."""


def _to_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _from_bytes(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


_EMPTY = _to_bytes(np.zeros(0))


def _row(*, path: str, key: tuple[int, int, int], chunk: int, final: bool, duration_s: float = float("nan"),
         error: str = "", inputs: bytes = _EMPTY, starts: bytes = _EMPTY, padded: bytes = _EMPTY) -> dict:
    return {"path": np.array([path]), "size_bytes": np.array([key[0]]), "mtime_ns": np.array([key[1]]),
            "ctime_ns": np.array([key[2]]),
            "chunk": np.array([chunk]), "final": np.array([final]), "duration_s": np.array([duration_s]),
            "error": np.array([error]), "inputs": np.array([inputs], dtype=object),
            "starts": np.array([starts], dtype=object), "padded": np.array([padded], dtype=object)}


def decode_file(batch: dict, *, recipe: Recipe, batch_windows: int) -> Iterator[dict]:
    """Ray Data task: one file -> one row per batch of windows (the last row has ``final`` set)."""
    path = str(batch["path"][0])
    key = file_key(Path(path))
    frontend = recipe.frontend(batch_windows=batch_windows)
    chunk, held = 0, None
    try:
        with FileDecoder(path, sample_rate=recipe.sample_rate) as decoder:
            def windows() -> Iterator:
                for block in decoder.blocks():
                    yield from frontend.process(block)
                yield from frontend.flush()

            for window_batch in windows():
                if held is not None:
                    yield _row(path=path, key=(key.size_bytes, key.mtime_ns, key.ctime_ns), chunk=chunk, final=False, **held)
                    chunk += 1
                held = {"inputs": _to_bytes(window_batch.inputs), "starts": _to_bytes(window_batch.starts_s),
                        "padded": _to_bytes(window_batch.padded)}
            yield _row(path=path, key=(key.size_bytes, key.mtime_ns, key.ctime_ns), chunk=chunk, final=True,
                       duration_s=decoder.duration_s, **(held or {}))
    except AudioFileError as error:
        yield _row(path=path, key=(key.size_bytes, key.mtime_ns, key.ctime_ns), chunk=chunk, final=True, error=str(error))
    finally:
        frontend.close()


class ModelActor:
    """Ray Data actor: one ONNX Runtime session, loaded once, one model call per batch of windows."""

    def __init__(self, *, model_path: str, precision: str | None = None) -> None:
        self._model = WindowModel(path=model_path, threads=1, precision=precision)

    def __call__(self, batch: dict) -> dict:
        data = batch["inputs"][0]
        values = np.zeros((0, NUM_VALUES))
        if not batch["error"][0] and data != _EMPTY:
            values = self._model.process(_from_bytes(data))
        out = {name: batch[name] for name in ("path", "size_bytes", "mtime_ns", "ctime_ns", "chunk", "final", "duration_s",
                                              "error", "starts", "padded")}
        out["values"] = np.array([_to_bytes(values)], dtype=object)
        return out


class _Gatherer:
    """Collects each file's batches until the file is complete; each file comes out once."""

    def __init__(self, *, model: WindowModel, recipe: Recipe, keep_windows: bool) -> None:
        self._model, self._recipe, self._keep = model, recipe, keep_windows
        self._chunks: dict[str, dict[int, dict]] = {}
        self._finals: dict[str, int] = {}
        self._done: set[str] = set()

    def process(self, row: dict) -> FileResult | None:
        path, chunk = str(row["path"]), int(row["chunk"])
        if path in self._done or chunk in self._chunks.get(path, {}):
            return None  # a retried task's repeat
        self._chunks.setdefault(path, {})[chunk] = row
        if bool(row["final"]):
            self._finals[path] = chunk
        if path not in self._finals or len(self._chunks[path]) != self._finals[path] + 1:
            return None
        self._done.add(path)
        chunks = self._chunks.pop(path)
        rows = [chunks[i] for i in range(self._finals.pop(path) + 1)]
        return self._result(rows)

    def _result(self, rows: list[dict]) -> FileResult:
        last = rows[-1]
        key = FileKey(path=str(last["path"]), size_bytes=int(last["size_bytes"]), mtime_ns=int(last["mtime_ns"]),
                      ctime_ns=int(last["ctime_ns"]))
        result = FileResult(key=key, model=self._model.name, model_version=self._model.version)
        if str(last["error"]):
            result.error = str(last["error"])
            return result
        stats = RunningStats()
        values = [_from_bytes(r["values"]) for r in rows]
        for chunk_values in values:
            stats.process(chunk_values)
        padded = [_from_bytes(r["padded"]) for r in rows]
        result.duration_s = float(last["duration_s"])
        result.num_windows, result.mean, result.std = stats.count, stats.mean, stats.std
        result.padded = bool(np.concatenate(padded).any())
        if self._keep:
            starts_s = np.concatenate([_from_bytes(r["starts"]) for r in rows])
            result.windows = WindowValues(
                starts_s=starts_s,
                ends_s=window_ends(starts_s=starts_s, duration_s=result.duration_s,
                                   span_s=self._recipe.window_span_s),
                padded=np.concatenate(padded), values=np.concatenate(values),
            )
        return result


def connect(*, address: str | None) -> None:
    """Join the Ray cluster at ``address`` (None: a local Ray, or the cluster in ``RAY_ADDRESS``)."""
    import ray

    if ray.is_initialized():
        return
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                 include_dashboard=False, configure_logging=True)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise ClusterError(f"cannot join the Ray cluster at {address or 'local'} ({error})") from error


def analyse_on_ray(
    paths: list[Path],
    *,
    model_path: Path,
    address: str | None = None,
    actors: int | None = None,
    keep_windows: bool = False,
    batch_windows: int = DEFAULT_BATCH_WINDOWS,
    precision: str | None = None,
) -> Iterator[FileResult]:
    """Analyse ``paths`` on the Ray cluster at ``address``; yield each file's result once it is complete.

    ``actors``: actors (default: one per CPU of the cluster). Ray fuses the decode step into the model
    actors when they ask for the same resources, so each actor reads, decodes and runs the model, and the
    windows never cross the network.
    """
    import ray

    model = WindowModel(path=model_path, threads=1, precision=precision)  # name, version, recipe; actors load their own
    if not paths:
        model.close()
        return
    connect(address=address)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if actors is None:
        actors = max(1, int(ray.cluster_resources().get("CPU", 1)))
    dataset = ray.data.from_items([{"path": os.path.abspath(p)} for p in paths], override_num_blocks=len(paths))
    dataset = dataset.map_batches(
        decode_file, batch_size=1, batch_format="numpy", num_cpus=CPUS_PER_TASK,
        fn_kwargs={"recipe": model.recipe, "batch_windows": batch_windows},
    )
    dataset = dataset.map_batches(
        ModelActor, batch_size=1, batch_format="numpy", num_cpus=CPUS_PER_ACTOR,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
        fn_constructor_kwargs={"model_path": str(model.path), "precision": model.precision},
    )
    gatherer = _Gatherer(model=model, recipe=model.recipe, keep_windows=keep_windows)
    try:
        for row in dataset.iter_rows():
            result = gatherer.process(row)
            if result is not None:
                yield result
    finally:
        model.close()
