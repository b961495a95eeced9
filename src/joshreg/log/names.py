"""Where things are: the event store beside a registry file, the claim that reserves a session id.

Naming rules only, no I/O; every writer and reader of a store agrees on them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["default_events_path", "session_claim_name"]


def default_events_path(db_path: str | os.PathLike[str]) -> str:
    """The event store beside a registry file: ``sweep.duckdb`` → ``sweep.events``."""
    p = Path(db_path)
    return str(p.with_suffix(".events") if p.suffix else p.with_name(p.name + ".events"))


def session_claim_name(session_id: str) -> str:
    """The claim that reserves a session id in a store, so no two processes create it twice."""
    return f"claims/sessions/{hashlib.sha256(session_id.encode()).hexdigest()[:32]}.json"
