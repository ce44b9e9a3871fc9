"""The runtime must never import torch (only mer_live/train/ may), the package has no import cycles, and the
import contract (.importlinter: layers along the signal flow, independent outputs) holds."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


RUNTIME_MODULES = [
    "mer_live",
    "mer_live.cli",
    "mer_live.features.spectrogram",
    "mer_live.model.emotion_model",
    "mer_live.core.labels",
    "mer_live.model.explanation",
    "mer_live.offline.analysis",
    "mer_live.live.daemon",
]
PACKAGE = Path(__file__).resolve().parent.parent / "mer_live"


def test_importing_the_runtime_does_not_import_torch() -> None:
    code = (
        "import sys, importlib\n"
        f"for name in {RUNTIME_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print(len(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "0", f"runtime imported torch: {result.stdout}{result.stderr}"


def test_no_module_outside_train_mentions_torch_in_an_import() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "train" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == "torch" or name.startswith("torch.") for name in names):
                offenders.append(f"{path}:{node.lineno}")
    assert offenders == []


def _load_module_graph():
    """``docs/module_graph.py``, the script that prints the graph (one implementation of the walk)."""
    path = PACKAGE.parent / "docs" / "module_graph.py"
    spec = importlib.util.spec_from_file_location("module_graph", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MODULE_GRAPH = _load_module_graph()
ALL_MODULES = sorted(MODULE_GRAPH.module_graph(root=PACKAGE))
ENTRY_POINTS = {"mer_live.__main__", "mer_live.train.__main__"}  # they run the program when imported


def test_the_package_has_no_import_cycles() -> None:
    graph = MODULE_GRAPH.module_graph(root=PACKAGE)
    assert "mer_live.live.daemon" in graph["mer_live.cli"]  # the walk sees lazy imports (inside functions) too
    assert MODULE_GRAPH.cycles(graph=graph) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text("def f():\n    from . import a\n")
    (package / "c.py").write_text("import pkg.a\n")
    graph = MODULE_GRAPH.module_graph(root=package)
    assert graph["pkg.c"] == {"pkg.a": False} and graph["pkg.b"] == {"pkg.a": True}
    assert MODULE_GRAPH.cycles(graph=graph) == [["pkg.a", "pkg.b"]]


FOUNDATION = tuple(sorted(m for m in ALL_MODULES if m.startswith("mer_live.core.")))
HEAVY = ("pythonosc", "onnxruntime", "sounddevice", "soundfile", "soxr", "tqdm", "mido", "rtmidi", "rich")


def test_the_foundation_modules_stay_at_the_bottom() -> None:
    """``mer_live.core`` (labels, readings, exit codes, addresses, fields) imports only itself (and the
    standard library or numpy), and the settings load no sink's library, the model or the audio stack:
    validating a setting or making a reading never opens anything."""
    graph = MODULE_GRAPH.module_graph(root=PACKAGE)
    assert "mer_live.core.fields" in FOUNDATION
    for name in FOUNDATION:
        assert set(graph[name]) <= set(FOUNDATION), name
    code = (
        "import importlib, sys\n"
        f"for name in {FOUNDATION + ('mer_live.config.settings', 'mer_live.config.options')!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_each_module_imports_alone() -> None:
    """A fresh interpreter imports every module with no other mer_live module loaded before it (the
    package's modules are dropped from ``sys.modules`` between imports; third-party ones stay, to keep
    this fast), so no module depends on another having been imported first."""
    names = [m for m in ALL_MODULES if m not in ENTRY_POINTS]
    code = (
        "import importlib, sys, traceback\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'mer_live' or m.startswith('mer_live.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        print(name, traceback.format_exc(limit=-1).strip().splitlines()[-1])\n"
        "    else:\n"
        "        print(name, 'ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    outcome = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert sorted(outcome) == sorted(names)
    assert {name: text for name, text in outcome.items() if text != "ok"} == {}


LINT_IMPORTS = ("import sys; from importlinter.cli import lint_imports_command; "
                "sys.exit(lint_imports_command.main(args=sys.argv[1:], standalone_mode=False))")


def _lint_imports(*, root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package under ``root`` with the project's ``.importlinter``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    config = PACKAGE.parent / ".importlinter"
    return subprocess.run([sys.executable, "-c", LINT_IMPORTS, str(config), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contract_holds() -> None:
    """``.importlinter``: the layers along the signal flow, outputs independent of each other, no training
    code and no torch, Ray, matplotlib or TensorFlow at run time, no cycles between siblings."""
    result = _lint_imports(root=PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


def test_the_import_contract_catches_violations(tmp_path: Path) -> None:
    """The contract can fail: an output that imports another output and the worker, and a core module that
    imports torch, break four contracts (the cycle is one of them)."""
    copy = tmp_path / "mer_live"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("*.onnx", "__pycache__"))
    with open(copy / "outputs" / "osc.py", "a", encoding="utf-8") as handle:
        handle.write("\nfrom mer_live.outputs import midi  # noqa\nfrom mer_live.live import worker  # noqa\n")
    with open(copy / "core" / "labels.py", "a", encoding="utf-8") as handle:
        handle.write("\n\ndef _never_called():\n    import torch  # noqa\n")
    result = _lint_imports(root=tmp_path)
    assert result.returncode != 0
    summary = " ".join(result.stdout.split())  # contract names wrap
    verdicts = {name: re.search(re.escape(name) + r".*?(KEPT|BROKEN)", summary).group(1) for name in (
        "Packages follow the signal flow", "Each output stands alone", "No torch", "No import cycles",
        "Nothing at run time imports the training code")}
    assert verdicts == {**dict.fromkeys(verdicts, "BROKEN"), "Nothing at run time imports the training code": "KEPT"}

