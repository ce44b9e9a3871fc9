"""``python -m mer_live.train``: the same as ``mer-live-train``."""

import sys

from .cli import main

sys.exit(main())
