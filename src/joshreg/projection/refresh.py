"""The public tables (upstream's names and columns) recomputed from the event tables, for the keys
a batch touched or for everything.
"""

from __future__ import annotations

import msgspec

from joshreg.log.events import (
    REMOVALS,
    DesignDeleted,
    DesignRegistered,
    EventBase,
    LabelAssigned,
    LabelCommit,
    LabelSuperseded,
    OutputRegistered,
    RunCompleted,
    RunDropped,
    RunRegistered,
    RunReset,
    RunRestored,
    RunStarted,
    RunStatusChanged,
    SessionCreated,
    SessionStatusChanged,
    TagsSet,
)
from joshreg.projection.sqltext import INLINE_ROWS, quote_identifier, sql_literal
from joshreg.projection.tables import CONFIG_PARAMS_CORE_COLUMNS, table_columns, widen_into

# The public tables a full refresh fills with one query over the event tables: views instead,
# in a projector that does not materialize.
VIEWED = frozenset(
    {
        "job_configs",
        "session_configs",
        "sweep_sessions",
        "job_runs",
        "run_outputs",
        "run_tags",
        "target_designs",
        "target_requirements",
    }
)


# What a live reset or drop names leaves the tables (the ``removed_keys`` view), whatever
# arrives later: conditions on the event tables of registrations and of executions.
LIVE_REGISTRATION = " AND event_id::VARCHAR NOT IN (SELECT key FROM removed_keys WHERE kind = 'registration')"
LIVE_RUN = " AND run_id NOT IN (SELECT key FROM removed_keys WHERE kind = 'run_id')"

# The names under which a batch's affected keys are known to SQL: sessions, run hashes, run
# hashes (not among those) whose label or status changed, run ids, output ids, tag keys,
# design names.
AFFECTED = ("_aff_s", "_aff_h", "_aff_l", "_aff_r", "_aff_o", "_aff_g", "_aff_d")
# Up to this many keys, a statement names a key set as a list of literals (see ``_key_set``).
INLINE_KEYS = 16

# Each public table's key columns, first in its column order: a row is replaced by key.
TABLE_KEYS = {
    "job_configs": ("run_hash",),
    "session_configs": ("session_id", "run_hash"),
    "config_parameters": ("run_hash",),
    "sweep_sessions": ("session_id",),
    "job_runs": ("run_id",),
    "run_outputs": ("output_id",),
}


class RefreshTables:
    """How the public tables follow the event tables. A mixin of ``Projector``."""

    def _register_affected(self, events: list[EventBase], commits: list[LabelCommit]) -> None:
        """Note the keys whose public rows a batch changes, for ``_refresh`` to redo only them."""
        sessions: set[str] = set()
        hashes: set[str] = set()
        runs: set[str] = set()
        outputs: set[str] = set()
        marked: set[str] = set()
        tagged: set[str] = set()
        designs: set[str] = set()
        for e in events:
            t = type(e)
            if t is RunStarted or t is RunCompleted:
                runs.add(e.run_id)  # type: ignore[attr-defined]
            elif t is OutputRegistered:
                outputs.add(e.output_id)  # type: ignore[attr-defined]
            elif t is RunRegistered:
                hashes.add(e.run_hash)  # type: ignore[attr-defined]
                if e.attributes:  # type: ignore[attr-defined]
                    tagged.add("run_hash" + TAG_KEY_SEP + e.run_hash)  # type: ignore[attr-defined]
                sessions.add(e.session_id)  # type: ignore[attr-defined]
            elif t is SessionCreated or t is SessionStatusChanged:
                sessions.add(e.session_id)  # type: ignore[attr-defined]
            elif t is RunStatusChanged:
                marked.add(e.run_hash)  # type: ignore[attr-defined]
            elif t is TagsSet:
                tagged.add(e.scope + TAG_KEY_SEP + e.key)  # type: ignore[attr-defined]
            elif t is DesignRegistered or t is DesignDeleted:
                designs.add(e.name)  # type: ignore[attr-defined]
        # Configurations whose label or status may have changed.
        labelled: set[str] = hashes | marked
        removals = [a for c in commits for a in c.actions if isinstance(a, REMOVALS)]
        if removals:
            self._removals_affect(removals, hashes, runs, outputs, sessions)
            labelled |= hashes
        for c in commits:
            for a in c.actions:
                labelled.add(a.run_hash)
                if isinstance(a, LabelAssigned) and a.previous_run_hash:
                    labelled.add(a.previous_run_hash)
                elif isinstance(a, LabelSuperseded):
                    labelled.add(a.superseded_by)
        # Configurations whose rows are written again carry their label and status already.
        labelled -= hashes
        self._affected = {}
        self._ranges = {}
        key_sets = (sessions, hashes, labelled, runs, outputs, tagged, designs)
        for name, keys in zip(AFFECTED, key_sets, strict=True):
            if not keys:
                continue
            ordered = sorted(keys)
            # Key ranges let DuckDB skip row groups by their min/max statistics: run and output
            # ids minted by joshreg are UUIDv7, so a batch's ids are close together in time.
            self._ranges[name] = (ordered[0], ordered[-1])
            self._affected[name] = self._key_set(name, ordered)

    def _key_set(self, name: str, ordered: list[str]) -> str:
        """The SQL set expression (for ``IN``) of a sorted list of keys: a few as literals, more
        as one JSON text unnested (binding a long list of literals costs DuckDB about 15 µs a
        key, in every statement naming it), very many as an Arrow table."""
        if len(ordered) <= INLINE_KEYS:
            return "(" + ", ".join(sql_literal(k) for k in ordered) + ")"
        if len(ordered) <= INLINE_ROWS:
            text = sql_literal(msgspec.json.encode(ordered).decode())
            return f"(SELECT unnest(from_json({text}, '[\"VARCHAR\"]')))"
        import pyarrow as pa

        self.con.register(name, pa.table({"k": pa.array(ordered, pa.string())}))
        return f"(SELECT k FROM {name})"

    def _removals_affect(
        self,
        removals: list[RunReset | RunDropped | RunRestored],
        hashes: set[str],
        runs: set[str],
        outputs: set[str],
        sessions: set[str],
    ) -> None:
        """Add the keys that resets, drops and restores (already in ``label_history``) take out
        of the tables or bring back: their hashes, the executions they name and those
        executions' outputs, and the sessions that registered the hashes."""
        for a in removals:
            hashes.add(a.run_hash)
            runs.update(self._named_run_ids(a))
        named = ", ".join(sql_literal(h) for h in sorted(hashes))
        sessions.update(
            r[0]
            for r in self.con.execute(
                f"SELECT DISTINCT session_id FROM events_run_registered WHERE run_hash IN ({named})"
            ).fetchall()
        )
        if runs:
            ids = ", ".join(sql_literal(r) for r in sorted(runs))
            outputs.update(
                r[0]
                for r in self.con.execute(
                    f"SELECT output_id FROM events_output_registered WHERE run_id IN ({ids})"
                ).fetchall()
            )

    def _fill(self, table: str, select: str, *, full: bool, upsert: bool = False) -> None:
        """Add ``select``'s rows to ``table``. With ``upsert``, a row whose key the table holds
        replaces that row in place (one MERGE: an update, where deleting the row and inserting
        it again costs a statement more and appends it anew, which DuckDB pays for at commit).
        In a full refresh without ``materialize``, make ``table`` a view of the rows instead,
        with the table's column names and types (so that comparing it with a real table
        compares values, not types)."""
        if full and not self.materialize:
            assert table in VIEWED, table  # so that a second rebuild drops the view again
            cols = table_columns(self.con, table)
            names = ", ".join(quote_identifier(c) for c in cols)
            typed = ", ".join(
                f"CAST({quote_identifier(c)} AS {t}) AS {quote_identifier(c)}" for c, t in cols.items()
            )
            self.con.execute(f"DROP TABLE {table}")
            self.con.execute(f"CREATE VIEW {table} AS SELECT {typed} FROM ({select}) AS _rows({names})")
            return
        if upsert:
            keys = TABLE_KEYS[table]
            on = " AND ".join(f"{table}.{k} = _src.{k}" for k in keys)
            # The source's columns are in the table's order: UPDATE and INSERT take them by position.
            self.con.execute(
                f"MERGE INTO {table} USING ({select}) AS _src({', '.join(keys)}) ON {on} "
                "WHEN MATCHED THEN UPDATE WHEN NOT MATCHED THEN INSERT"
            )
            return
        self.con.execute(f"INSERT INTO {table} {select}")

    def _refresh(self, *, full: bool, params_full: bool = True, upsert: bool = False) -> None:
        """Write the public rows of the affected keys again (every row when ``full``).

        ``upsert`` is for batches that can only add or change rows: no reset, drop or restore
        among their label commits, which alone take rows out of the tables. Their rows replace
        those of the same key in place; other batches delete the affected keys' rows first.
        """
        con = self.con
        affected = self._affected
        # Only when a reset or drop was ever recorded do the fills ask what they removed.
        live_reg, live_run = (LIVE_REGISTRATION, LIVE_RUN) if self._any_removals() else ("", "")

        def skip(aff: str) -> bool:
            return not full and aff not in affected

        def flt(col: str, aff: str) -> str:
            if full:
                return ""
            lo, hi = (sql_literal(k) for k in self._ranges[aff])
            return f"AND {col} BETWEEN {lo} AND {hi} AND {col} IN {affected[aff]}"

        def delete(table: str, col: str, aff: str, *, keyed: bool = True) -> None:
            if not full and not (keyed and upsert):
                con.execute(f"DELETE FROM {table} WHERE true {flt(col, aff)}")

        def fill(table: str, select: str) -> None:
            self._fill(table, select, full=full, upsert=upsert)

        def first(table: str, key: str, where: str, *, last: bool = False) -> str:
            return _first_rows(table, key, where, last=last, split=full)

        # Each configuration gets its label and status as it is written (in a full refresh, instead
        # of updating every row just written, which rewrites them at commit); then those of the
        # configurations whose label or status alone changed are updated.
        if not skip("_aff_h"):
            fh = flt("run_hash", "_aff_h")
            delete("job_configs", "run_hash", "_aff_h")
            fill(
                "job_configs",
                f"""
                SELECT r.run_hash, session_id, josh_path, josh_content, config_content, file_mappings,
                       (SELECT min(lc.label) FROM labels_current lc WHERE lc.run_hash = r.run_hash),
                       make_timestamp(coalesce(config_created_us, created_us, hlc // 1000)),
                       s.status, s.superseded_by, s.reason, s.changed_at
                FROM {first("events_run_registered", "run_hash", fh + live_reg)} r
                LEFT JOIN {f"(SELECT * FROM run_status WHERE true {fh})" if fh else "run_status"} s
                    ON s.run_hash = r.run_hash
                """,
            )
        if not full and not skip("_aff_l"):
            fl = flt("run_hash", "_aff_l")
            con.execute(
                f"""
                UPDATE job_configs SET label = u.label, status = u.status, superseded_by = u.superseded_by,
                    status_reason = u.reason, status_updated_at = u.changed_at
                FROM (
                    SELECT c.run_hash, s.status, s.superseded_by, s.reason, s.changed_at,
                           (SELECT min(lc.label) FROM labels_current lc WHERE lc.run_hash = c.run_hash)
                               AS label
                    FROM (SELECT DISTINCT run_hash FROM job_configs WHERE true {fl}) c
                    LEFT JOIN (SELECT * FROM run_status WHERE true {fl}) s USING (run_hash)
                ) u
                WHERE job_configs.run_hash = u.run_hash
                """
            )
        if not skip("_aff_h"):
            delete("session_configs", "run_hash", "_aff_h")
            fill(
                "session_configs",
                f"""
                SELECT session_id, run_hash, make_timestamp(min(coalesce(created_us, hlc // 1000)))
                FROM events_run_registered WHERE true {flt("run_hash", "_aff_h")} {live_reg}
                GROUP BY session_id, run_hash
                """,
            )
        if params_full:
            self._fill_params(full=True, live=live_reg)
        elif not skip("_aff_h"):
            delete("config_parameters", "run_hash", "_aff_h")
            self._fill_params(full=False, live=live_reg, upsert=upsert)
        if not skip("_aff_s"):
            delete("sweep_sessions", "session_id", "_aff_s")
            fs = flt("session_id", "_aff_s")
            # A session's configurations are its rows of session_configs, written above.
            fill(
                "sweep_sessions",
                f"""
                SELECT c.session_id, c.experiment_name, make_timestamp(coalesce(c.created_us, c.hlc // 1000)),
                       c.template_path,
                       NULL, c.simulation, coalesce(j.n, 0), coalesce(j.n, 0) * coalesce(c.replicates, 1),
                       coalesce(s.status, 'pending'), c.metadata
                FROM (
                    SELECT * FROM {first("events_session_created", "session_id", fs)}
                ) c
                LEFT JOIN (
                    SELECT session_id, arg_max(status, (hlc, writer, seq)) AS status
                    FROM events_session_status_changed WHERE true {fs} GROUP BY session_id
                ) s USING (session_id)
                LEFT JOIN (
                    SELECT session_id, count(run_hash) AS n
                    FROM session_configs WHERE true {fs} GROUP BY session_id
                ) j USING (session_id)
                """,
            )
        if not skip("_aff_r"):
            delete("job_runs", "run_id", "_aff_r")
            fr = flt("run_id", "_aff_r") + live_run
            fill(
                "job_runs",
                f"""
                SELECT s.run_id, s.run_hash, s.session_id, s.replicate,
                       make_timestamp(coalesce(s.started_us, s.hlc // 1000)),
                       make_timestamp(coalesce(c.completed_us, c.hlc // 1000)), c.exit_code, s.output_path,
                       c.error_message, s.metadata
                FROM {first("events_run_started", "run_id", fr)} s
                LEFT JOIN {first("events_run_completed", "run_id", fr, last=True)} c USING (run_id)
                """,
            )
        if not skip("_aff_o"):
            delete("run_outputs", "output_id", "_aff_o")
            fill(
                "run_outputs",
                f"""
                SELECT output_id, run_id, output_type, file_path, file_size, row_count,
                       make_timestamp(coalesce(created_us, hlc // 1000))
                FROM {first("events_output_registered", "output_id", flt("output_id", "_aff_o") + live_run)}
                """,
            )

        if not skip("_aff_g"):
            scoped = f"scope || '{TAG_KEY_SEP}' || key"
            delete("run_tags", scoped, "_aff_g", keyed=False)
            self._fill("run_tags", _tags_select(flt(scoped, "_aff_g")), full=full)
        if not skip("_aff_d"):
            delete("target_designs", "name", "_aff_d", keyed=False)
            delete("target_requirements", "design_name", "_aff_d", keyed=False)
            live = _live_designs(flt("name", "_aff_d"))
            self._fill("target_designs", f"SELECT name, make_timestamp(hlc // 1000) FROM {live}", full=full)
            self._fill(
                "target_requirements",
                f"""
                SELECT name, r -> 'attributes', (r ->> 'min_active')::INTEGER
                FROM (SELECT name, unnest(from_json(requirements, '["JSON"]')) AS r FROM {live})
                """,
                full=full,
            )

    def _ensure_param_columns(self, wanted: dict[str, str]) -> bool:
        """Widen the column set for new names or types; True if the table was recreated."""
        merged = dict(self.param_columns)
        widen_into(merged, wanted)
        if merged == self.param_columns:
            return False
        self._rebuild_param_table(merged)
        return True

    def _rebuild_param_table(self, columns: dict[str, str]) -> None:
        usable: dict[str, str] = {}
        seen: dict[str, str] = {c.lower(): c for c in CONFIG_PARAMS_CORE_COLUMNS}
        for name in sorted(columns):
            if name.lower() in seen:  # refused at write time; ignored if a merged log has it
                continue
            seen[name.lower()] = name
            usable[name] = columns[name]
        cols = "".join(f", {quote_identifier(n)} {t}" for n, t in usable.items())
        self.con.execute("DROP TABLE IF EXISTS config_parameters")
        self.con.execute(f"CREATE TABLE config_parameters (run_hash VARCHAR(12){cols})")
        self.param_columns = usable

    def _fill_params(self, *, full: bool, live: str = LIVE_REGISTRATION, upsert: bool = False) -> None:
        exprs = []
        for name, typ in self.param_columns.items():
            pointer = sql_literal("/" + name.replace("~", "~0").replace("/", "~1"))
            if typ == "DOUBLE":
                exprs.append(f"TRY_CAST(json_extract_string(p, {pointer}) AS DOUBLE)")
            else:
                exprs.append(f"json_extract_string(p, {pointer})")
        select = ", ".join(["run_hash", *exprs])
        flt = "" if full else f"AND run_hash IN {self._affected['_aff_h']}"
        first = _first_rows("events_run_registered", "run_hash", flt + live, split=full)
        rows = f"SELECT {select} FROM (SELECT run_hash, parameters AS p FROM {first})"
        self._fill("config_parameters", rows, full=False, upsert=upsert)


# Joins a tag scope and key into one affected key (a control character no caller uses).
TAG_KEY_SEP = "\x1f"


def _tags_select(where: str) -> str:
    """``run_tags`` rows: per (scope, key), every tag's latest value by (clock, writer,
    sequence), as one JSON object with sorted keys. Tag names are read as a MAP's keys, never
    put into a JSON path or the SQL text."""
    return f"""
        SELECT scope, key,
               to_json(map_from_entries(list({{'key': tag, 'value': value}} ORDER BY tag))),
               make_timestamp(max(hlc) // 1000)
        FROM (
            SELECT scope, key, e.key AS tag, arg_max(e.value, (hlc, writer, seq)) AS value, max(hlc) AS hlc
            FROM (
                SELECT scope, key, hlc, writer, seq,
                       unnest(map_entries(from_json(tags, '"MAP(VARCHAR, JSON)"'))) AS e
                FROM (
                    SELECT scope, key, tags, hlc, writer, seq FROM events_tags_set
                    UNION ALL
                    SELECT 'run_hash', run_hash, attributes, hlc, writer, seq FROM events_run_registered
                    WHERE attributes IS NOT NULL
                )
                WHERE true {where}
            )
            GROUP BY scope, key, e.key
        )
        GROUP BY scope, key
    """


def _live_designs(where: str) -> str:
    """The designs whose latest event (by clock, writer, sequence) registered them."""
    return f"""(
        SELECT name, requirements, hlc FROM (
            SELECT name, requirements, hlc, writer, seq FROM events_design_registered WHERE true {where}
            UNION ALL
            SELECT name, NULL, hlc, writer, seq FROM events_design_deleted WHERE true {where}
        )
        QUALIFY row_number() OVER (PARTITION BY name ORDER BY hlc DESC, writer DESC, seq DESC) = 1
            AND requirements IS NOT NULL)"""


def _first_rows(table: str, key: str, where: str, *, last: bool = False, split: bool = False) -> str:
    """A subquery of the rows of ``table`` matching ``where`` (``AND ...`` or empty) that come
    first per ``key`` in ``(hlc, writer, seq)`` order (``last``: come last), one row per key.

    ``split`` is for whole tables, where nearly every key has a single row: the rows whose key
    is unique are taken as they are, and only the keys with several rows are sorted by the
    window function, which skips a sort of every row. Both forms give the same rows (a NULL
    key is one key, as in ``PARTITION BY``).
    """
    o = " DESC" if last else ""
    rank = f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY hlc{o}, writer{o}, seq{o}) = 1"
    if not split:
        return f"(SELECT * FROM {table} WHERE true {where} {rank})"
    dup = f"SELECT 1 FROM _dup WHERE _dup._k IS NOT DISTINCT FROM _t.{key}"
    return f"""(
        WITH _dup AS MATERIALIZED (
            SELECT {key} AS _k FROM {table} WHERE true {where} GROUP BY {key} HAVING count(*) > 1)
        SELECT * FROM {table} _t WHERE true {where} AND NOT EXISTS ({dup})
        UNION ALL
        SELECT * FROM (SELECT * FROM {table} _t WHERE true {where} AND EXISTS ({dup}) {rank}))"""


# Every configuration's label and status again, after the label rows were replaced (a merged fold).
ALL_LABELS = """
UPDATE job_configs SET label = (
    SELECT min(lc.label) FROM labels_current lc WHERE lc.run_hash = job_configs.run_hash),
    status = NULL, superseded_by = NULL, status_reason = NULL, status_updated_at = NULL;
UPDATE job_configs SET status = s.status, superseded_by = s.superseded_by,
    status_reason = s.reason, status_updated_at = s.changed_at
FROM run_status s WHERE job_configs.run_hash = s.run_hash;
"""


def collect_param_types(events: list[EventBase], into: dict[str, str]) -> None:
    for e in events:
        if type(e) is RunRegistered:
            widen_into(into, e.parameter_types)  # type: ignore[attr-defined]
