"""``python -m mer_live`` is ``mer-live``."""

import sys

from .cli import main

sys.exit(main())
