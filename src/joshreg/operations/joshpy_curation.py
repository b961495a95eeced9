"""Importing what joshpy's newer registry says about runs: statuses, tags and target designs.

A mixin of the importer (``joshpy_import``). Each row becomes one event with an id derived from
its content, so importing a source again (or one imported before joshreg knew these tables)
adds what is new and nothing twice. Upstream keeps only the latest status; that one arrives as
one ``run.status_changed`` carrying its original time.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from joshreg.log.events import DesignRegistered, RunStatusChanged, TagsSet, json_value
from joshreg.operations.joshpy_source import decode, event_id

if TYPE_CHECKING:
    from joshreg.operations.joshpy_source import Source

STATUSES = ("active", "superseded", "bad")


class ImportCuration:
    """``statuses``, ``tags`` and ``designs`` of a joshpy registry, as events. ``tgt``,
    ``report``, ``_ids`` and ``_append`` are the importer's, as for ``ImportResults``."""

    src: Source
    tz: str
    added: Counter[str]
    present: Counter[str]
    bad_hashes: set[str]

    def statuses(self) -> None:
        have = self._ids("events_run_status_changed")
        rows = self.src.select(
            "job_configs",
            ("run_hash", "status", "superseded_by", "status_reason", "status_updated_at"),
            self.tz,
            ("run_hash",),
        )
        for run_hash, status, by, reason, updated in rows:
            if status is None or run_hash in self.bad_hashes:
                continue
            if status not in STATUSES:
                self.report.differences.append(
                    f"run {run_hash}: status {status!r} is not one of {STATUSES}; left out"
                )
                continue
            eid = event_id("run-status", run_hash, status, by, reason, updated)
            if eid in have:
                self.present["statuses"] += 1
                continue
            self._append(
                RunStatusChanged(
                    event_id=eid,
                    run_hash=run_hash,
                    status=status,
                    superseded_by=by if status == "superseded" else None,
                    reason=reason,
                    changed_us=updated,
                )
            )
            self.added["statuses"] += 1

    def tags(self) -> None:
        have = self._ids("events_tags_set")
        for scope, key, text, _updated in self.src.select(
            "run_tags", ("scope", "key", "tags", "updated_at"), self.tz, ("scope", "key")
        ):
            tags = decode(text)
            if not isinstance(tags, dict) or not tags:
                continue
            if scope == "run_hash" and key in self.bad_hashes:
                continue
            eid = event_id("tags", scope, key, json.dumps(tags, sort_keys=True))
            if eid in have:
                self.present["tags"] += 1
                continue
            values = {str(k): json_value(v) for k, v in tags.items()}
            self._append(TagsSet(event_id=eid, scope=str(scope), key=str(key), tags=values))
            self.added["tags"] += 1

    def designs(self) -> None:
        have = self._ids("events_design_registered")
        requirements: dict[str, list[dict[str, Any]]] = {}
        for name, attributes, min_active in self.src.select(
            "target_requirements", ("design_name", "attributes", "min_active"), self.tz, ("design_name",)
        ):
            attrs = decode(attributes)
            if isinstance(attrs, dict) and attrs:
                requirements.setdefault(name, []).append(
                    {"attributes": dict(sorted(attrs.items())), "min_active": int(min_active or 1)}
                )
        for name, _created in self.src.select("target_designs", ("name", "created_at"), self.tz, ("name",)):
            reqs = sorted(requirements.get(name, []), key=lambda r: json.dumps(r, sort_keys=True))
            if not reqs:
                self.report.differences.append(f"target design {name!r} has no requirements; left out")
                continue
            eid = event_id("design", name, json.dumps(reqs, sort_keys=True))
            if eid in have:
                self.present["designs"] += 1
                continue
            self._append(DesignRegistered(event_id=eid, name=name, requirements=reqs))
            self.added["designs"] += 1
