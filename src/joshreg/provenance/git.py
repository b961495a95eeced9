"""The git commit of the working directory, recorded with each session for provenance.

Standard library only. Follows upstream: ``git rev-parse HEAD`` in the process's current
directory, the first 12 characters, and ``+dirty`` when ``git status --porcelain`` prints
anything (modified or untracked files). No git, no repository or a timeout give ``None``.
"""

from __future__ import annotations

import subprocess

__all__ = ["git_hash"]


def git_hash(cwd: str | None = None, timeout: float = 5.0) -> str | None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )

    try:
        head = run("rev-parse", "HEAD")
        if head.returncode != 0 or not head.stdout.strip():
            return None
        short = head.stdout.strip()[:12]
        status = run("status", "--porcelain")
    except (FileNotFoundError, subprocess.TimeoutExpired, NotADirectoryError):
        return None
    return short + "+dirty" if status.stdout.strip() else short
