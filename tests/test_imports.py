"""The runtime must never import torch: only mer_live/train/ may."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

RUNTIME_MODULES = [
    "mer_live",
    "mer_live.cli",
    "mer_live.features",
    "mer_live.model",
    "mer_live.labels",
    "mer_live.explanation",
    "mer_live.analysis",
    "mer_live.daemon",
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
