"""``python -m edgedl.cli``: the ``edgedl`` command."""
import sys

from .parser import main

sys.exit(main())
