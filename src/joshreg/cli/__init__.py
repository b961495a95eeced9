"""The ``joshreg`` command line: a skin over library calls that Python users can make too.

Each command parses its arguments, makes one library call and formats the result. May import
anything of joshreg; nothing imports it but ``joshreg.__main__`` and the demo.
"""

from joshreg.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
