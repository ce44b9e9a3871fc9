"""Exit statuses shared by every ``mer-live`` command, and the error that means "the user's to fix".

A leaf module: the entry point (:mod:`mer_live.cli`) and every subcommand import it, never each other.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # something broke at run time
EXIT_USAGE = 2  # bad input: arguments, config, files, model; the user's to fix
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM


class UsageError(Exception):
    """A command-line or startup problem: printed as one line (``PROG: error: ...``), exit status 2.
    ``prog`` names the command when it is not the one being run (a subcommand's parser)."""

    def __init__(self, message: str, *, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog
