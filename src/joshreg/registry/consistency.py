"""``check_consistency``: whether the results agree with the runs (upstream HEAD's checks, plus
the orphan events ``verify`` reports). A mixin of every reader."""

from __future__ import annotations

from joshreg.errors import ConsistencyError
from joshreg.models import ConsistencyIssue
from joshreg.projection import consistency
from joshreg.projection import queries as q


class ConsistencyReads:
    """``check_consistency``."""

    def check_consistency(
        self, run_hash: str | None = None, *, strict: bool = False
    ) -> list[ConsistencyIssue]:
        """Findings about one run (a hash or label) or all: results without a configuration or
        execution, one replicate from several executions (errors), successful runs with no
        results loaded and orphan events (warnings). ``strict=True`` raises
        ``ConsistencyError`` (a ``RuntimeError``) when there are errors."""
        self.sync()
        if run_hash is not None:  # a label, or any hash: data of an unregistered one is a finding
            run_hash = q.resolve_label(self._con(), run_hash) or run_hash
        issues = consistency.check_consistency(self._con(), run_hash)
        errors = [i for i in issues if i.severity == "error"]
        if strict and errors:
            listed = "; ".join(f"{i.kind}: {i.detail}" for i in errors)
            raise ConsistencyError(f"{len(errors)} consistency error(s): {listed}")
        return issues
