"""``mer-live``: the live daemon (no subcommand, see :mod:`mer_live.live.daemon`) or a subcommand
(``mer-live analyze FILE...``). ``mer-live --help`` lists the subcommands.

To add a subcommand, write a module with ``HELP``, ``DESCRIPTION``, ``add_arguments(parser)`` and
``run(args) -> int`` (raising :class:`~mer_live.core.exit_codes.UsageError` for the user's mistakes) and add
it to :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import importlib
import sys

from mer_live.config import options
from mer_live.core.command import ArgumentParser, run_command
from mer_live.core.exit_codes import UsageError

PROG = "mer-live"
SUBCOMMANDS = {  # name -> module
    "analyze": "mer_live.offline.analysis",
    "report": "mer_live.offline.report",
    "dmx": "mer_live.outputs.dmx.command",
    "calibrate": "mer_live.outputs.dmx.venue",
    "presets": "mer_live.config.presets.listing",
    "examples": "mer_live.config.presets.kit",
}


def build_parser() -> ArgumentParser:
    """The whole command line: the daemon's options, and one subparser per subcommand."""
    from mer_live.live import daemon

    parser = ArgumentParser(prog=PROG, description=daemon.DESCRIPTION, epilog=daemon.EPILOG)
    daemon.add_arguments(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="subcommands", parser_class=ArgumentParser)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(commands.add_parser(name, help=module.HELP, description=module.DESCRIPTION))
    return parser


def _run(args) -> int:
    if args.command is None:
        from mer_live.live import daemon

        return daemon.run(args)
    try:
        daemon_options = bool(args.config or args.list_devices or args.print_config or options.given_on_command_line(args=args))
    except options.ConfigError as error:
        raise UsageError(str(error)) from error
    if daemon_options:
        raise UsageError(f"daemon options do not apply to {PROG} {args.command}: give them after the subcommand, or drop them")
    return importlib.import_module(SUBCOMMANDS[args.command]).run(args)


def main(argv: list[str] | None = None) -> int:
    """Run ``mer-live`` with ``argv`` (default: the process's arguments); returns the exit status."""
    return run_command(parser=build_parser(), run=_run, argv=list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
