"""Built-in presets: TOML settings files shipped inside the package, so ``--config maxmsp`` works from any
folder after ``pip install mer-live``. A preset holds only the keys that differ from the defaults, and its
first comment line says what it is for (``mer-live presets`` lists them).

The receiver patches that go with the presets (Pure Data, Max/MSP, SuperCollider) are package data too, in
``mer_live/examples/``; :func:`copy_examples` copies them out (``mer-live examples DIR``).
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from mer_live.config.settings import ConfigError

SUFFIX = ".toml"
COMMENT = "#"
SUMMARY_PREFIXES = ("Preset for ", "Preset: ")
EXAMPLES_FOLDER = "examples"  # beside this package's parent: mer_live/examples/
SKIPPED_PARTS = ("__pycache__",)


def _folder() -> Path:
    return Path(str(resources.files(__name__)))


def names() -> list[str]:
    """The built-in presets' names (their file names without ``.toml``), sorted."""
    return sorted(path.stem for path in _folder().glob(f"*{SUFFIX}"))


def preset_path(name: str) -> Path:
    """The file of the built-in preset ``name``; :class:`KeyError` when there is none."""
    if name not in names():
        raise KeyError(name)
    return _folder() / f"{name}{SUFFIX}"


def summary(name: str) -> str:
    """What the preset is for: its first comment line, without the comment sign and a leading "Preset for",
    capitalised."""
    for line in preset_path(name).read_text(encoding="utf-8").splitlines():
        if line.startswith(COMMENT):
            text = line.lstrip(COMMENT).strip()
            for prefix in SUMMARY_PREFIXES:
                text = text.removeprefix(prefix)
            return text[:1].upper() + text[1:]
    return ""


def locate(value: str | Path) -> Path:
    """The file that ``--config VALUE`` reads: ``VALUE`` when it is a file, else the built-in preset of that
    name (``maxmsp`` or ``maxmsp.toml``). Neither: :class:`ConfigError` naming the presets."""
    given = Path(value)
    if given.is_file():
        return given
    name = given.name.removesuffix(SUFFIX)
    if given.parent == Path(".") and name in names():  # a bare name, not a path that happens to end in one
        return preset_path(name)
    if given.exists():
        raise ConfigError(f"config {value}: not a file; give a TOML file or a built-in preset")
    raise ConfigError(
        f"config {value}: no such file, and no built-in preset of that name; "
        f"give a TOML file or one of: {', '.join(names())} (mer-live presets)"
    )


def examples_folder() -> Path:
    """The receiver patches inside the installed package (``mer_live/examples/``)."""
    return Path(str(resources.files("mer_live"))) / EXAMPLES_FOLDER


def example_files() -> list[Path]:
    """Every file of the receiver patches, relative to :func:`examples_folder`, sorted."""
    root = examples_folder()
    return sorted(
        path.relative_to(root) for path in root.rglob("*")
        if path.is_file() and not any(part in SKIPPED_PARTS for part in path.parts)
    )


def copy_examples(destination: Path, *, overwrite: bool = False) -> list[Path]:
    """Copy the receiver patches into ``destination`` (created when missing) and return the files written.
    A file that exists already is :class:`FileExistsError`, raised before anything is written, unless
    ``overwrite``."""
    relative = example_files()
    targets = [destination / path for path in relative]
    if not overwrite:
        for target in targets:
            if target.exists():
                raise FileExistsError(target)
    for path, target in zip(relative, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(examples_folder() / path, target)
    return targets
