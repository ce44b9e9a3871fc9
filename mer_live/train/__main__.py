"""``python -m mer_live.train``: the same as ``mer-live-train``."""

import sys

from .cli import main

if __name__ == "__main__":  # not when a spawned worker process imports this module
    sys.exit(main())
