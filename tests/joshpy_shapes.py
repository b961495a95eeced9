"""Registries shaped like the ones joshpy writes, built here from its documented schema.

Nothing from joshpy is installed or imported: the DDL follows section 2 of
``shared/reference/joshpy-registry.md`` (the seed's version, with its primary and foreign keys,
or without them as older joshpy versions and hand-made exports have it) and the additions of
``joshpy-head.md`` (status columns, ``run_tags``, target designs, the ``cell_data_current``
view). Rows are written the way joshpy's statements write them: ``CURRENT_TIMESTAMP`` defaults
(naive local times), ``INSERT OR IGNORE``, dynamic columns added with ``ALTER TABLE``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb


def seed_ddl(*, keys: bool = True) -> str:
    """The seed's schema; ``keys=False`` leaves out primary and foreign keys."""
    pk = " PRIMARY KEY" if keys else ""

    def fk(target: str) -> str:
        return f" REFERENCES {target}" if keys else ""

    composite = ",\n    PRIMARY KEY (session_id, run_hash)" if keys else ""
    return f"""
CREATE TABLE IF NOT EXISTS sweep_sessions (
    session_id VARCHAR{pk},
    experiment_name VARCHAR,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    template_path VARCHAR,
    template_hash VARCHAR(12),
    simulation VARCHAR,
    total_jobs INTEGER,
    total_replicates INTEGER,
    status VARCHAR DEFAULT 'pending',
    metadata JSON
);
CREATE TABLE IF NOT EXISTS job_configs (
    run_hash VARCHAR(12){pk},
    session_id VARCHAR{fk("sweep_sessions(session_id)")},
    josh_path TEXT,
    josh_content TEXT,
    config_content TEXT,
    file_mappings JSON,
    label VARCHAR,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS session_configs (
    session_id VARCHAR{fk("sweep_sessions(session_id)")},
    run_hash VARCHAR(12){fk("job_configs(run_hash)")},
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP{composite}
);
CREATE TABLE IF NOT EXISTS config_parameters (
    run_hash VARCHAR(12){pk}{fk("job_configs(run_hash)")}
);
CREATE TABLE IF NOT EXISTS job_runs (
    run_id VARCHAR{pk},
    run_hash VARCHAR(12){fk("job_configs(run_hash)")},
    session_id VARCHAR{fk("sweep_sessions(session_id)")},
    replicate INTEGER,
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    exit_code INTEGER,
    output_path VARCHAR,
    error_message TEXT,
    metadata JSON
);
CREATE TABLE IF NOT EXISTS run_outputs (
    output_id VARCHAR{pk},
    run_id VARCHAR{fk("job_runs(run_id)")},
    output_type VARCHAR,
    file_path VARCHAR,
    file_size BIGINT,
    row_count INTEGER,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE SEQUENCE IF NOT EXISTS cell_id_seq START 1;
CREATE TABLE IF NOT EXISTS cell_data (
    cell_id BIGINT{pk} DEFAULT nextval('cell_id_seq'),
    run_id VARCHAR{fk("job_runs(run_id)")},
    run_hash VARCHAR(12),
    step INTEGER NOT NULL,
    replicate INTEGER NOT NULL,
    position_x DOUBLE,
    position_y DOUBLE,
    longitude DOUBLE,
    latitude DOUBLE,
    entity_type VARCHAR
);
CREATE INDEX IF NOT EXISTS idx_cell_run ON cell_data(run_id);
CREATE INDEX IF NOT EXISTS idx_cell_step_replicate ON cell_data(step, replicate);
"""


HEAD_DDL = """
ALTER TABLE job_configs ADD COLUMN status VARCHAR;
ALTER TABLE job_configs ADD COLUMN superseded_by VARCHAR(12);
ALTER TABLE job_configs ADD COLUMN status_reason TEXT;
ALTER TABLE job_configs ADD COLUMN status_updated_at TIMESTAMP;
CREATE TABLE IF NOT EXISTS run_tags (
    scope VARCHAR, key VARCHAR, tags JSON, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS target_designs (
    name VARCHAR PRIMARY KEY, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS target_requirements (
    design_name VARCHAR REFERENCES target_designs(name), attributes JSON, min_active INTEGER,
    PRIMARY KEY (design_name, attributes)
);
CREATE OR REPLACE VIEW cell_data_current AS
    SELECT c.* FROM cell_data c JOIN job_configs USING (run_hash) WHERE coalesce(status, 'active') = 'active';
"""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class JoshpyRegistry:
    """Writes a registry file the way joshpy's ``RunRegistry`` does, statement by statement."""

    path: Path
    keys: bool = True
    head: bool = False
    con: duckdb.DuckDBPyConnection = field(init=False)

    def __post_init__(self) -> None:
        self.con = duckdb.connect(str(self.path))
        self.con.execute(seed_ddl(keys=self.keys))
        if self.head:
            self.con.execute(HEAD_DDL)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> JoshpyRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what joshpy's methods execute --------------------------------------------------------

    def create_session(
        self,
        job_config: dict[str, Any],
        experiment_name: str | None = None,
        session_id: str | None = None,
        simulation: str | None = "Main",
        template_path: str | None = None,
    ) -> str:
        sid = session_id or str(uuid.uuid4())
        metadata = {"job_config": job_config, "git_hash": "0123abc"}
        self.con.execute(
            "INSERT INTO sweep_sessions (session_id, experiment_name, simulation, template_path, "
            "template_hash, metadata) VALUES (?, ?, ?, ?, NULL, ?)",
            [sid, experiment_name or simulation, simulation, template_path, json.dumps(metadata)],
        )
        return sid

    def update_session_status(self, session_id: str, status: str) -> None:
        self.con.execute("UPDATE sweep_sessions SET status = ? WHERE session_id = ?", [status, session_id])

    def register_run(
        self,
        session_id: str,
        run_hash: str,
        josh_path: str | None,
        config_content: str,
        file_mappings: dict[str, Any] | None,
        parameters: dict[str, Any] | None,
        josh_content: str | None = None,
    ) -> None:
        mappings = json.dumps(file_mappings) if file_mappings else None
        self._insert_or_ignore(
            "job_configs",
            {
                "run_hash": run_hash,
                "session_id": session_id,
                "josh_path": josh_path,
                "josh_content": josh_content,
                "config_content": config_content,
                "file_mappings": mappings,
            },
            ("run_hash",),
        )
        self._insert_or_ignore(
            "session_configs", {"session_id": session_id, "run_hash": run_hash}, ("session_id", "run_hash")
        )
        if not parameters:
            self._insert_or_ignore("config_parameters", {"run_hash": run_hash}, ("run_hash",))
            return
        existing = {
            r[0]
            for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'config_parameters'"
            ).fetchall()
        }
        for name, value in parameters.items():
            if name not in existing:
                typ = "DOUBLE" if _numeric(value) else "VARCHAR"
                self.con.execute(f"ALTER TABLE config_parameters ADD COLUMN {_q(name)} {typ}")
        self._insert_or_ignore("config_parameters", {"run_hash": run_hash, **parameters}, ("run_hash",))

    def _insert_or_ignore(self, table: str, row: dict[str, Any], key: tuple[str, ...]) -> None:
        """joshpy's ``INSERT OR IGNORE``; a file without keys gets the same effect by a check."""
        cols = ", ".join(_q(n) for n in row)
        marks = ", ".join("?" for _ in row)
        if self.keys:
            self.con.execute(f"INSERT OR IGNORE INTO {table} ({cols}) VALUES ({marks})", list(row.values()))
            return
        same = " AND ".join(f"{_q(k)} = ?" for k in key)
        self.con.execute(
            f"INSERT INTO {table} ({cols}) SELECT {marks} "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {same})",
            [*row.values(), *(row[k] for k in key)],
        )

    def label_run(self, run_hash: str, label: str) -> None:
        self.con.execute("UPDATE job_configs SET label = ? WHERE run_hash = ?", [label, run_hash])

    def start_run(
        self,
        run_hash: str,
        session_id: str | None,
        replicate: int = 0,
        output_path: str | None = None,
        metadata: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        run_id = run_id or str(uuid.uuid4())
        self.con.execute(
            "INSERT INTO job_runs (run_id, run_hash, session_id, replicate, started_at, output_path, "
            "metadata) VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP, ?, ?)",
            [
                run_id,
                run_hash,
                session_id,
                replicate,
                output_path,
                json.dumps(metadata) if metadata else None,
            ],
        )
        return run_id

    def complete_run(self, run_id: str, exit_code: int, error_message: str | None = None) -> None:
        self.con.execute(
            "UPDATE job_runs SET completed_at = CURRENT_TIMESTAMP, exit_code = ?, error_message = ? "
            "WHERE run_id = ?",
            [exit_code, error_message, run_id],
        )

    def register_output(
        self,
        run_id: str,
        output_type: str,
        file_path: str,
        file_size: int | None = None,
        output_id: str | None = None,
    ) -> str:
        output_id = output_id or str(uuid.uuid4())
        self.con.execute(
            "INSERT INTO run_outputs (output_id, run_id, output_type, file_path, file_size, row_count) "
            "VALUES (?, ?, ?, ?, ?, NULL)",
            [output_id, run_id, output_type, file_path, file_size],
        )
        return output_id

    def load_rows(
        self,
        run_id: str | None,
        run_hash: str,
        rows: list[dict[str, Any]],
        variables: dict[str, str],
        entity_type: str = "patch",
    ) -> None:
        """What ``CellDataLoader.load_csv`` inserts for a parsed export: one row per CSV row."""
        existing = {
            r[0]
            for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'cell_data'"
            ).fetchall()
        }
        for name, typ in variables.items():
            if name not in existing:
                self.con.execute(f"ALTER TABLE cell_data ADD COLUMN {_q(name)} {typ}")
        names = ["step", "replicate", "position_x", "position_y", "longitude", "latitude", *variables]
        cols = ", ".join(_q(n) for n in names)
        marks = ", ".join("?" for _ in names)
        self.con.executemany(
            f"INSERT INTO cell_data (run_id, run_hash, entity_type, {cols}) VALUES (?, ?, ?, {marks})",
            [[run_id, run_hash, entity_type, *(r.get(n) for n in names)] for r in rows],
        )

    def tag(self, scope: str, key: str, **tags: Any) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO run_tags (scope, key, tags) VALUES (?, ?, ?)",
            [scope, key, json.dumps(tags)],
        )

    def register_design(self, name: str, requirements: list[tuple[dict[str, Any], int]]) -> None:
        self.con.execute("INSERT OR REPLACE INTO target_designs (name) VALUES (?)", [name])
        self.con.execute("DELETE FROM target_requirements WHERE design_name = ?", [name])
        for attributes, min_active in requirements:
            self.con.execute(
                "INSERT INTO target_requirements VALUES (?, ?, ?)",
                [name, json.dumps(attributes, sort_keys=True), min_active],
            )

    def mark_run(
        self, run_hash: str, status: str, superseded_by: str | None = None, reason: str | None = None
    ) -> None:
        self.con.execute(
            "UPDATE job_configs SET status = ?, superseded_by = ?, status_reason = ?, "
            "status_updated_at = CURRENT_TIMESTAMP WHERE run_hash = ?",
            [status, superseded_by, reason, run_hash],
        )


def _numeric(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def small_sweep(path: Path, *, keys: bool = True, head: bool = False) -> Path:
    """A joshpy registry with two sessions (one pooling a configuration of the other), three
    configurations with typed parameters, five executions (one failed, one still running),
    outputs, two labels and result rows of two variables; returns ``path``."""
    with JoshpyRegistry(path, keys=keys, head=head) as jp:
        s1 = jp.create_session(
            {"template_path": "sweep.jshc.j2", "replicates": 2}, "growth", template_path="sweep.jshc.j2"
        )
        s2 = jp.create_session({"replicates": 2}, "growth-more")
        mappings = {"climate": {"path": "data/climate.jshd", "hash": "d41d8cd98f00b204e9800998ecf8427e"}}
        jp.register_run(
            s1,
            "aaaaaaaaaaaa",
            "model.josh",
            "maxGrowth = 40\n",
            mappings,
            {"maxGrowth": 40, "kind": "oak"},
            "start simulation Main\nend simulation\n",
        )
        jp.register_run(
            s1, "bbbbbbbbbbbb", "model.josh", "maxGrowth = 80\n", None, {"maxGrowth": 80, "kind": "pine"}
        )
        jp.register_run(
            s2, "bbbbbbbbbbbb", "model.josh", "maxGrowth = 80\n", None, {"maxGrowth": 80, "kind": "pine"}
        )
        jp.register_run(s2, "cccccccccccc", "model.josh", "maxGrowth = 120\n", None, {"maxGrowth": 120.5})
        jp.update_session_status(s1, "completed")
        jp.update_session_status(s2, "running")
        jp.label_run("aaaaaaaaaaaa", "baseline")
        jp.label_run("bbbbbbbbbbbb", "tall")
        runs = []
        for h, sid in (
            ("aaaaaaaaaaaa", s1),
            ("aaaaaaaaaaaa", s1),
            ("bbbbbbbbbbbb", s1),
            ("cccccccccccc", s2),
        ):
            rid = jp.start_run(h, sid, 0, f"out/{h}", {"parameters": {"x": 1}, "replicates": 2})
            runs.append((rid, h))
        jp.complete_run(runs[0][0], 0)
        jp.complete_run(runs[1][0], 0)
        jp.complete_run(runs[2][0], 1, "java.lang.OutOfMemoryError")
        jp.start_run("cccccccccccc", s2)  # still running: no completion
        for rid, h in runs[:3]:
            jp.register_output(rid, "export.patch", f"/data/{h}/{rid}.csv", 1234)
        variables = {"avg.height": "DOUBLE", "treeCount": "DOUBLE"}
        for rid, h in runs[:2]:
            jp.load_rows(
                rid,
                h,
                [
                    {
                        "step": s,
                        "replicate": r,
                        "position_x": 1.0,
                        "position_y": 2.0,
                        "longitude": -116.0 - r,
                        "latitude": 34.0 + s,
                        "avg.height": 1.5 * s,
                        "treeCount": 10 + s,
                    }
                    for s in range(3)
                    for r in range(2)
                ],
                variables,
            )
        jp.load_rows(
            runs[2][0],
            "bbbbbbbbbbbb",
            [{"step": 0, "replicate": 0, "note": "dry"}],
            {"note": "VARCHAR"},
            "meta",
        )
        if head:
            jp.mark_run("bbbbbbbbbbbb", "bad", reason="wrong climate file")
            jp.tag("run_hash", "aaaaaaaaaaaa", site="north")
            jp.register_design("coverage", [({"site": "north"}, 2)])
    return path
