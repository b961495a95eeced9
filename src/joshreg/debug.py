"""``joshreg.debug``, where joshpy users import it from: josh debug output.

The code lives in ``joshreg.provenance.debug``.
"""

from joshreg.provenance.debug import (
    DebugMessage,
    DebugMessageStore,
    DebugSummary,
    EventMatch,
    format_message,
    format_summary,
    format_trace,
    load_debug_file,
    output_path,
    parse_debug_line,
)

__all__ = [
    "DebugMessage",
    "DebugMessageStore",
    "DebugSummary",
    "EventMatch",
    "format_message",
    "format_summary",
    "format_trace",
    "load_debug_file",
    "output_path",
    "parse_debug_line",
]
