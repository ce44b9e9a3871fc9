"""What every ``mer-live`` command shares: the argument parser whose errors are one line, and the way a
command's ``main`` turns problems into ``PROG: error: ...`` on stderr and an exit status
(:mod:`mer_live.core.exit_codes`).

A subcommand is a module with ``HELP`` (one line for ``mer-live --help``), ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args) -> int``; :data:`mer_live.cli.SUBCOMMANDS` lists them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from mer_live.core.exit_codes import EXIT_USAGE, UsageError


class ArgumentParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors raise :class:`UsageError` (one line, exit 2)
    instead of printing the usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see {self.prog} --help", prog=self.prog)


def run_command(
    *,
    parser: ArgumentParser,
    run: Callable[[argparse.Namespace], int],
    argv: list[str],
) -> int:
    """Parse ``argv`` and run; a :class:`UsageError` is one line ``PROG: error: ...`` and exit status 2,
    ``--help``/``--version`` exit 0."""
    try:
        return run(parser.parse_args(argv))
    except UsageError as error:
        print(f"{error.prog or parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_request:  # --help, --version
        return int(exit_request.code or 0)
