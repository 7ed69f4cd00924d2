"""``edgedl``, the host-side command line: one short handler per subcommand (``commands``), the argument
groups and inputs they share (``inputs``)."""
from .commands import build_parser, main

__all__ = ["build_parser", "main"]
