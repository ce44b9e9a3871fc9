"""``python -m mer_live`` is ``mer-live``."""

import sys

from .cli import main

if __name__ == "__main__":  # not when multiprocessing imports the main module into a child process
    sys.exit(main())
