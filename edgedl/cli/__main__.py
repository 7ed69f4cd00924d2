"""``python -m edgedl.cli``: the ``edgedl`` command."""
import sys

from .commands import main

sys.exit(main())
