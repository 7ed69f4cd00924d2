"""``edgedl``, the host-side command line: the parser (``parser``), one short handler per subcommand
(``commands``), the argument groups and inputs they share (``inputs``)."""
from .parser import build_parser, main

__all__ = ["build_parser", "main"]
