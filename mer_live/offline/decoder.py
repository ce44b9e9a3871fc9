"""Audio files -> mono float32 blocks at a model's sample rate, decoded and resampled block by block.

Peak memory does not depend on the file's length: at most ``BLOCK_FRAMES`` source frames (all channels)
are held at a time, and soxr resamples them in streaming form. The result equals decoding the whole file,
mixing it to mono and resampling it in one call (:func:`mer_live.features.spectrogram.load_audio`) sample for sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mer_live.features import spectrogram
from mer_live.config.settings import SAMPLERATE_RANGE_HZ

BLOCK_FRAMES = 65536  # source frames per read: 1.5 s at 44.1 kHz, 16 MiB at 32 channels
RESAMPLE_QUALITY = "HQ"  # as features.resample


class FileDecoder:
    """One audio file, decoded in blocks: ``with FileDecoder(path, sample_rate=...) as d: for b in d.blocks()``.

    Raises :class:`mer_live.features.spectrogram.AudioFileError` with a one-line reason for a missing, empty,
    unreadable or implausible file, and for one that stops decoding partway, stops before the length its
    header gives (a truncated file) or holds non-finite samples.
    """

    def __init__(self, path: str | Path, *, sample_rate: int, block_frames: int = BLOCK_FRAMES) -> None:
        import soundfile

        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self._block_frames = int(block_frames)
        self.samples_out = 0  # mono samples at ``sample_rate`` produced so far
        problem = spectrogram.file_problem(path=self.path)
        if problem:
            raise spectrogram.AudioFileError(f"{self.path}: {problem}")
        try:
            self._handle = soundfile.SoundFile(str(self.path))
        except spectrogram.decode_errors() as error:
            reason = spectrogram.decode_error_reason(error=error)
            raise spectrogram.AudioFileError(f"{self.path}: cannot decode audio ({reason})") from error
        self.source_rate = int(self._handle.samplerate)
        low, high = SAMPLERATE_RANGE_HZ
        if not low <= self.source_rate <= high:
            self._handle.close()
            raise spectrogram.AudioFileError(f"{self.path}: sample rate {self.source_rate} Hz is outside {low} to {high} Hz")
        self._declared = spectrogram.declared_frames(path=self.path, handle=self._handle)

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield mono blocks ``(num_samples,)`` float32 at ``sample_rate`` until the end of the file."""
        import soxr

        stream = None
        if self.source_rate != self.sample_rate:
            stream = soxr.ResampleStream(
                self.source_rate, self.sample_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY
            )
        source_frames = 0
        while True:
            try:
                audio = self._handle.read(self._block_frames, dtype="float32", always_2d=True)
            except spectrogram.decode_errors() as error:
                reason = spectrogram.decode_error_reason(error=error)
                raise spectrogram.AudioFileError(
                    f"{self.path}: cannot decode audio after {source_frames / self.source_rate:.1f} s ({reason})"
                ) from error
            last = audio.shape[0] < self._block_frames
            if audio.shape[0] == 0 and source_frames == 0:
                raise spectrogram.AudioFileError(f"{self.path}: the file holds no audio")
            source_frames += audio.shape[0]
            mono = spectrogram.to_mono(audio=audio)
            if not np.all(np.isfinite(mono)):
                raise spectrogram.AudioFileError(f"{self.path}: the audio holds non-finite samples")
            block = mono if stream is None else stream.resample_chunk(mono, last=last)
            if len(block):
                self.samples_out += len(block)
                yield block
            if last:
                problem = spectrogram.shortfall_problem(decoded=source_frames, declared=self._declared, rate=self.source_rate)
                if problem:
                    raise spectrogram.AudioFileError(f"{self.path}: {problem}")
                return

    @property
    def duration_s(self) -> float:
        """Seconds of audio produced so far (the file's duration once :meth:`blocks` is exhausted)."""
        return self.samples_out / self.sample_rate

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "FileDecoder":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
