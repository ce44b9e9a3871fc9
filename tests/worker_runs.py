"""Running a :class:`~mer_live.live.worker.Worker` on an array in tests, and a sink that records what it sends."""

from __future__ import annotations

import numpy as np

from mer_live.core.reading import Reading
from mer_live.live.source import ArraySource
from mer_live.live.worker import Worker


class Recorder:
    """A sink that keeps every reading (and can act on the worker after a given update). Once
    :func:`run_worker` has attached the worker's model stage (``stage``), it also keeps the stage's frame
    count at each update (``frames``)."""

    def __init__(self, *, after: int | None = None, action=None) -> None:
        self.readings: list[Reading] = []
        self.frames: list[int] = []
        self.stage = None
        self._after = after
        self._action = action

    def process(self, *, reading: Reading) -> None:
        self.readings.append(reading)
        if reading.is_update and self.stage is not None:
            self.frames.append(self.stage.frames_emitted)
        if self._action is not None and reading.is_update and reading.updates == self._after:
            self._action()

    def close(self) -> None:
        pass

    @property
    def updates(self) -> list[Reading]:
        return [r for r in self.readings if r.is_update]


def run_worker(*, model, samples: np.ndarray, samplerate: float, recorder: Recorder | None = None,
               channel: int | None = None, **options) -> tuple[Recorder, Worker]:
    """``samples`` ``(num_samples,)`` or ``(num_samples, channels)`` through a worker as fast as it goes;
    ``options`` are the worker's. Returns the recorder and the (finished, error-free) worker."""
    recorder = recorder or Recorder()
    source = ArraySource(samples=samples, samplerate=samplerate, fast=True, channel=channel)
    worker = Worker(source=source, model=model, sinks=[recorder], **options)
    recorder.stage = worker._inference
    source.start()
    worker.run()
    source.close()
    assert worker.error is None
    return recorder, worker
