"""What every ``mer-live`` command shares: the argument parser whose errors are one line, and the way a
command's ``main`` turns problems into ``PROG: error: ...`` on stderr and an exit status
(:mod:`mer_live.core.exit_codes`).

A subcommand is a module with ``HELP`` (one line for ``mer-live --help``), ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args) -> int``; :data:`mer_live.cli.SUBCOMMANDS` lists them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from mer_live.core.exit_codes import EXIT_INTERRUPTED, EXIT_USAGE, UsageError

STANDARD_STREAMS = (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w"))


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
    ``--help``/``--version`` exit 0, an interrupt before the command took over its signals exit 130."""
    open_standard_streams()
    try:
        return run(parser.parse_args(argv))
    except UsageError as error:
        print(f"{error.prog or parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_request:  # --help, --version
        return int(exit_request.code or 0)
    except KeyboardInterrupt:  # Ctrl-C while starting up: nothing to finish yet
        print(f"{parser.prog}: interrupted while starting", file=sys.stderr)
        return EXIT_INTERRUPTED


def open_standard_streams() -> None:
    """Put ``/dev/null`` on any of file descriptors 0-2 that is closed (a service or ``>&-`` started us
    so), and give Python stream objects for them. Otherwise the next file opened (the CSV log) would get
    descriptor 1 or 2, and whatever writes to stdout or stderr (a decoder library, a child process)
    would write into it."""
    for _, fd, _ in STANDARD_STREAMS:
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    for name, fd, mode in STANDARD_STREAMS:
        if getattr(sys, name) is None:  # closed when Python started
            setattr(sys, name, open(fd, mode, closefd=False, encoding="utf-8", errors="replace"))
