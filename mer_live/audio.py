"""Audio files in: the one place that opens, checks and decodes them, for the daemon, ``analyze`` and training.

- :func:`file_problem` says why a path cannot be an audio file before any decoding (missing, a folder, empty,
  unreadable), :func:`decode_error_reason` turns a decoder's error into its one-line reason, and
  :func:`shortfall_problem` catches a file that stops decoding well before the length its header gives.
- :func:`load_audio` decodes a whole file at once: mono, resampled, ``(num_samples,)`` float32.
- :class:`FileDecoder` decodes block by block with the same result sample for sample, so that memory does not
  grow with the file's length (``analyze``); the live daemon's ``FileSource`` uses the same checks.

Every failure is an :class:`AudioFileError` whose message is one line naming the file and the reason.
Mixing to mono and resampling are the front-end's (:mod:`mer_live.features.spectrogram`).
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mer_live.features import spectrogram

SAMPLERATE_RANGE_HZ = (8000, 384000)  # capture rates and file rates accepted
# a file that decodes this much less than its header says (both must hold) has stopped early: an error
SHORTFALL_TOLERANCE_S = 1.0
SHORTFALL_TOLERANCE_FRACTION = 0.05  # MP3s without a Xing header give only an estimate of their length
UNKNOWN_FORMAT_REASONS = ("File does not exist or is not a regular file",)  # libsndfile: none of its formats
BLOCK_FRAMES = 65536  # source frames per read: 1.5 s at 44.1 kHz, 16 MiB at 32 channels
RESAMPLE_QUALITY = "HQ"  # as features.resample


class AudioFileError(RuntimeError):
    """An audio file that cannot be read or decoded."""


def decode_errors() -> tuple[type[Exception], ...]:
    """What soundfile raises for a file it cannot open or decode."""
    import soundfile

    return (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError)


def decode_error_reason(*, error: Exception) -> str:
    """The last line of a decoder's error message (its actual reason), or the error's type name.
    libsndfile's "does not exist or is not a regular file (possibly a pipe?)" for a regular file (the
    only kind that gets this far, see :func:`file_problem`) means no decoder recognised the data."""
    text = str(error).strip()
    if any(reason in text for reason in UNKNOWN_FORMAT_REASONS):
        return "not a known audio format, or a damaged file"
    return text.splitlines()[-1] if text else type(error).__name__


def _wav_declared_frames(*, path: str | Path) -> int | None:
    """The frames a RIFF/WAVE file's ``data`` chunk header declares (None: not a WAV, or a size left
    open by a streaming writer). libsndfile reports only the frames actually present."""
    try:
        with open(path, "rb") as handle:
            riff = handle.read(12)
            if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
                return None
            block_align = 0
            while True:
                header = handle.read(8)
                if len(header) < 8:
                    return None
                chunk, size = header[:4], struct.unpack("<I", header[4:])[0]
                if chunk == b"data":
                    return size // block_align if block_align and size not in (0, 0xFFFFFFFF) else None
                body = handle.read(size + size % 2) if chunk == b"fmt " else handle.seek(size + size % 2, os.SEEK_CUR)
                if chunk == b"fmt " and len(body) >= 14:
                    block_align = struct.unpack("<H", body[12:14])[0]
    except OSError:
        return None


def declared_frames(*, path: str | Path, handle) -> int:
    """The frames the file's header says it holds (``handle``: its open ``soundfile.SoundFile``)."""
    return max(int(handle.frames), _wav_declared_frames(path=path) or 0)


def shortfall_problem(*, decoded: int, declared: int, rate: float) -> str | None:
    """Why a file that decoded ``decoded`` of its ``declared`` frames stopped early (None: it did not)."""
    missing = declared - decoded
    if missing <= max(SHORTFALL_TOLERANCE_S * rate, SHORTFALL_TOLERANCE_FRACTION * declared):
        return None
    return f"the audio stops after {decoded / rate:.1f} s of the {declared / rate:.1f} s its header gives (truncated or damaged)"


def file_problem(*, path: str | Path) -> str | None:
    """Why ``path`` cannot be read as an audio file before any decoding, in a few words ("no such
    file", "file name too long", "empty file", ...), or None when it is a non-empty regular file."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return "no such file"
    except OSError as error:  # ENAMETOOLONG, EACCES, ELOOP, ...
        return (error.strerror or type(error).__name__).lower()
    if not stat.S_ISREG(status.st_mode):
        return "not a regular file"
    if status.st_size == 0:
        return "empty file (0 bytes)"
    try:
        with open(path, "rb"):
            pass
    except OSError as error:  # EACCES: the decoder would only say "System error."
        return (error.strerror or type(error).__name__).lower()
    return None


def load_audio(*, path: str | Path, target_rate: int = spectrogram.SAMPLE_RATE) -> np.ndarray:
    """Read any file soundfile can decode (wav, flac, ogg, mp3), mix to mono, resample to ``target_rate``
    (22,050 Hz for v1's front-end, 16,000 Hz for musicnn's).

    Returns ``(num_samples,)`` float32. Raises :class:`AudioFileError` with a one-line reason.
    """
    import soundfile

    path = Path(path)
    problem = file_problem(path=path)
    if problem:
        raise AudioFileError(f"{path}: {problem}")
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except decode_errors() as error:
        raise AudioFileError(f"{path}: cannot decode audio ({decode_error_reason(error=error)})") from error
    if audio.shape[0] == 0:
        raise AudioFileError(f"{path}: the file holds no audio")
    mono = spectrogram.to_mono(audio=audio)
    if not np.all(np.isfinite(mono)):
        raise AudioFileError(f"{path}: the audio holds non-finite samples")
    return spectrogram.resample(samples=mono, source_rate=float(rate), target_rate=target_rate)


class FileDecoder:
    """One audio file, decoded in blocks: ``with FileDecoder(path, sample_rate=...) as d: for b in d.blocks()``.

    Raises :class:`AudioFileError` with a one-line reason for a missing, empty,
    unreadable or implausible file, and for one that stops decoding partway, stops before the length its
    header gives (a truncated file) or holds non-finite samples.
    """

    def __init__(self, path: str | Path, *, sample_rate: int, block_frames: int = BLOCK_FRAMES) -> None:
        import soundfile

        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self._block_frames = int(block_frames)
        self.samples_out = 0  # mono samples at ``sample_rate`` produced so far
        problem = file_problem(path=self.path)
        if problem:
            raise AudioFileError(f"{self.path}: {problem}")
        try:
            self._handle = soundfile.SoundFile(str(self.path))
        except decode_errors() as error:
            reason = decode_error_reason(error=error)
            raise AudioFileError(f"{self.path}: cannot decode audio ({reason})") from error
        self.source_rate = int(self._handle.samplerate)
        low, high = SAMPLERATE_RANGE_HZ
        if not low <= self.source_rate <= high:
            self._handle.close()
            raise AudioFileError(f"{self.path}: sample rate {self.source_rate} Hz is outside {low} to {high} Hz")
        self._declared = declared_frames(path=self.path, handle=self._handle)

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
            except decode_errors() as error:
                reason = decode_error_reason(error=error)
                raise AudioFileError(
                    f"{self.path}: cannot decode audio after {source_frames / self.source_rate:.1f} s ({reason})"
                ) from error
            last = audio.shape[0] < self._block_frames
            if audio.shape[0] == 0 and source_frames == 0:
                raise AudioFileError(f"{self.path}: the file holds no audio")
            source_frames += audio.shape[0]
            mono = spectrogram.to_mono(audio=audio)
            if not np.all(np.isfinite(mono)):
                raise AudioFileError(f"{self.path}: the audio holds non-finite samples")
            block = mono if stream is None else stream.resample_chunk(mono, last=last)
            if len(block):
                self.samples_out += len(block)
                yield block
            if last:
                problem = shortfall_problem(decoded=source_frames, declared=self._declared, rate=self.source_rate)
                if problem:
                    raise AudioFileError(f"{self.path}: {problem}")
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
