"""``mer-live`` entry point: ``mer-live analyze FILE...`` or the live daemon (everything else)."""

from __future__ import annotations

import sys

ANALYZE_COMMAND = "analyze"


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the offline analyser or the live daemon; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == ANALYZE_COMMAND:
        from .analysis import main as analyze_main

        return analyze_main(args[1:])
    from .daemon import main as daemon_main

    return daemon_main(args)


if __name__ == "__main__":
    sys.exit(main())
