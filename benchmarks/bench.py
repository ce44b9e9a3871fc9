"""What every benchmark shares: the data clips, timing (wall and CPU), the machine, and the JSON it writes.

Every JSON file a benchmark writes (:func:`write`) starts with ``benchmark`` (the script), ``command`` (the
command line that made it, from the project root) and ``machine`` (CPU model, cores, memory, Python, ONNX
Runtime, and the load average when it started and ended: the machine may be shared, so speed is reported
as ratios against a baseline measured in the same run). Scripts import it as ``from bench import ...``
(Python puts the script's folder on the path).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_ENV = "MER_DATA_DIR"
MS = 1000.0
_LOAD_AT_START = os.getloadavg()  # when the script started (it imports this module first)


def data_dir() -> Path:
    """``$MER_DATA_DIR``, else ``../shared/data`` beside the project root."""
    return Path(os.environ.get(DATA_ENV) or ROOT.parent / "shared" / "data")


def clips(collection: str, count: int | None = None) -> list[Path]:
    """The first ``count`` (default: all) MP3 clips of ``collection`` (``soundtracks`` or ``4q-dev``), sorted
    by name; exits with a one-line message when there are fewer."""
    found = sorted((data_dir() / collection / "audio").glob("*.mp3"))
    if count is not None:
        found = found[:count]
    if not found or (count is not None and len(found) < count):
        sys.exit(f"{Path(sys.argv[0]).name}: only {len(found)} {collection} clips under {data_dir()} (set {DATA_ENV})")
    return found


def cpu_seconds(*, children: bool = False) -> float:
    """CPU seconds (user + system) of this process, or of its waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Timer:
    """``with Timer() as t: ...``: ``wall_s``, and ``cpu_s`` of this process and its children together."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    _start: tuple = field(default=(), repr=False)

    def __enter__(self) -> "Timer":
        self._start = (time.perf_counter(), cpu_seconds() + cpu_seconds(children=True))
        return self

    def __exit__(self, *_: object) -> None:
        self.wall_s = time.perf_counter() - self._start[0]
        self.cpu_s = cpu_seconds() + cpu_seconds(children=True) - self._start[1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The machine: CPU model, cores, memory, OS, Python and ONNX Runtime versions, load average at the start."""
    try:
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory_gib = None
    try:
        import onnxruntime

        runtime = onnxruntime.__version__
    except ImportError:
        runtime = None
    return {"cpu": _cpu_model(), "arch": platform.machine(), "cores": os.cpu_count(), "memory_gib": memory_gib,
            "os": platform.platform(), "python": platform.python_version(), "onnxruntime": runtime,
            "load_average_at_start": _LOAD_AT_START}


def command() -> str:
    """The command line that is running, with the script's path relative to the project root."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def report(**fields) -> dict:
    """A report's head (benchmark, command, machine) followed by ``fields``."""
    return {"benchmark": Path(command().split()[1]).as_posix(), "command": command(), "machine": machine(), **fields}


def write(data: dict, out: Path | None) -> None:
    """Write ``data`` (made by :func:`report`) as JSON to ``out`` (nothing when None), with the load average at the end."""
    data["machine"]["load_average_at_end"] = os.getloadavg()
    if out is not None:
        out.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {out}", file=sys.stderr)
