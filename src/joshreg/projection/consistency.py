"""Do the results agree with the runs? Upstream HEAD's consistency checks over the projection.

The tables keep no foreign keys and events arrive in any order, so a finding may be transient
(results of a worker whose registration is still on its way); ``verify`` is the other check,
of the log and the projection's integrity. Reads only.
"""

from __future__ import annotations

import duckdb

from joshreg.models import ConsistencyIssue
from joshreg.projection.orphans import find_orphans
from joshreg.projection.sqltext import bind

__all__ = ["check_consistency"]


def check_consistency(con: duckdb.DuckDBPyConnection, run_hash: str | None = None) -> list[ConsistencyIssue]:
    """Every finding about ``run_hash`` (or all runs): errors first, then warnings."""
    only = "" if run_hash is None else bind(" AND run_hash = ?", [run_hash])
    issues: list[ConsistencyIssue] = []
    for h, n in con.execute(
        "SELECT run_hash, count(*) FROM cell_data WHERE run_hash NOT IN (SELECT run_hash FROM job_configs)"
        f"{only} GROUP BY run_hash ORDER BY run_hash"
    ).fetchall():
        issues.append(
            ConsistencyIssue(
                "data_without_config", h, f"{n} cell_data rows of run hash {h}, which no configuration has"
            )
        )
    for h, run_id, n in con.execute(
        "SELECT run_hash, run_id, count(*) FROM cell_data WHERE run_id IS NOT NULL "
        f"AND run_id NOT IN (SELECT run_id FROM job_runs){only} GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        issues.append(
            ConsistencyIssue(
                "orphan_cell_data", h, f"{n} cell_data rows of run {run_id}, which no execution has"
            )
        )
    for h, replicate, run_ids in con.execute(
        "SELECT run_hash, replicate, list(DISTINCT run_id ORDER BY run_id) FROM cell_data "
        f"WHERE run_id IS NOT NULL{only} GROUP BY run_hash, replicate "
        "HAVING count(DISTINCT run_id) > 1 ORDER BY ALL"
    ).fetchall():
        issues.append(
            ConsistencyIssue(
                "duplicate_replicate",
                h,
                f"replicate {replicate} of {h} has results from {len(run_ids)} executions: "
                + ", ".join(run_ids),
            )
        )
    for h, run_id in con.execute(
        "SELECT run_hash, run_id FROM job_runs r WHERE exit_code = 0 "
        f"AND NOT EXISTS (SELECT 1 FROM cell_data c WHERE c.run_id = r.run_id){only} ORDER BY ALL"
    ).fetchall():
        issues.append(
            ConsistencyIssue(
                "ran_not_ingested", h, f"run {run_id} succeeded but none of its results are loaded", "warning"
            )
        )
    if run_hash is None:
        issues += [
            ConsistencyIssue("orphan_event", None, f"{o.segment}:{o.line}: {o.message}", "warning")
            for o in find_orphans(con)
        ]
    return issues
