"""``mer-live presets``: the built-in presets, one line each; ``mer-live presets NAME`` prints one of them
(to read it, or to save and edit it)."""

from __future__ import annotations

import argparse

from mer_live.config import presets
from mer_live.core.exit_codes import EXIT_OK, UsageError

HELP = "list the built-in presets (--config NAME), or print one"
DESCRIPTION = (
    "The built-in presets, for --config NAME: each sets only what differs from the defaults (mer-live "
    "--print-config shows every setting). With a NAME, print that preset's TOML."
)
FOOTER = "Use one with: mer-live --config NAME ...; print one with: mer-live presets NAME; receiver patches: mer-live examples DIR"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``presets`` subcommand's arguments."""
    parser.add_argument("name", nargs="?", metavar="NAME", help="print this preset's TOML instead of the list")


def run(args: argparse.Namespace) -> int:
    """List the presets, or print the one named; returns the exit status (raises :class:`UsageError`)."""
    names = presets.names()
    if args.name is not None:
        if args.name not in names:
            raise UsageError(f"no preset {args.name!r}; the presets are: {', '.join(names)}")
        print(presets.preset_path(args.name).read_text(encoding="utf-8"), end="")
        return EXIT_OK
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {presets.summary(name)}")
    print(f"\n{FOOTER}")
    return EXIT_OK
