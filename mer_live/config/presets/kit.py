"""``mer-live examples DIR``: copy the receiver patches (Pure Data, Max/MSP, SuperCollider) and their
README out of the installed package into DIR, to open them in their programs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mer_live.config import presets
from mer_live.core.exit_codes import EXIT_OK, UsageError

HELP = "copy the receiver patches (Pure Data, Max/MSP, SuperCollider) into a folder"
DESCRIPTION = (
    "Copy the ready-made receivers for mer-live's OSC into DIR: puredata/mer-live.pd, maxmsp/mer-live.maxpat, "
    "supercollider/mer-live.scd and a README. Each goes with a preset: mer-live --config puredata --demo."
)
NEXT_STEP = (
    "Open one in its program (e.g. pd {folder}/puredata/mer-live.pd), then play the demo to it: "
    "mer-live --config puredata --demo (or maxmsp, supercollider); {folder}/README.md says more."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``examples`` subcommand's arguments."""
    parser.add_argument("folder", type=Path, metavar="DIR", help="where to put them (created if missing)")
    parser.add_argument("--force", action="store_true", help="overwrite files of the same name")


def run(args: argparse.Namespace) -> int:
    """Copy the patches; returns the exit status (raises :class:`UsageError`)."""
    folder: Path = args.folder
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file; give a folder")
    try:
        written = presets.copy_examples(folder, overwrite=args.force)
    except FileExistsError as error:
        raise UsageError(f"{error.args[0]} exists already; give another folder, or --force to overwrite") from error
    except OSError as error:
        raise UsageError(f"cannot write into {folder}: {error.strerror}") from error
    for path in written:
        print(f"wrote {path}")
    print(NEXT_STEP.format(folder=folder))
    return EXIT_OK
