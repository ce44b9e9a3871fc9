"""``python -m mer_live`` is ``mer-live``."""

import sys

if __name__ == "__main__":  # not when multiprocessing imports the main module into a child process
    try:
        from .cli import main

        code = main()
    except KeyboardInterrupt:  # Ctrl-C while Python was still importing: no traceback
        code = 130  # EXIT_INTERRUPTED (mer_live.exit_codes may not be imported yet)
    sys.exit(code)
