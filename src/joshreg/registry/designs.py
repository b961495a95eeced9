"""Target designs: named sets of requirements over run attributes, and how far runs meet them.

A design is registered (or replaced wholesale) and deleted by events, so its history is kept
and ``as_of`` shows it as it was. ``check_design`` is a pure read: a requirement matches a run
whose attributes include each of its keys with a matching JSON value (``tag_queries``); only
active runs count, bad and superseded matches are listed beside them.
``DesignReads`` is a mixin of every reader, ``DesignWrites`` of ``RunRegistry``.
"""

from __future__ import annotations

import json
from typing import Any

from joshreg.errors import InvalidArgumentError, NotFoundError
from joshreg.log.events import DesignDeleted, DesignRegistered, json_value
from joshreg.models import Requirement, RequirementCoverage, TargetCoverageReport, TargetDesign
from joshreg.projection.sqltext import bind
from joshreg.projection.tag_queries import json_key


class DesignReads:
    """``list_designs``, ``get_design`` and ``check_design``."""

    def list_designs(self) -> list[TargetDesign]:
        """Every registered design, by name, its requirements in the order of their attributes'
        JSON text (the table keeps no other order)."""
        self.sync()
        rows = self._con().execute(
            "SELECT d.name, r.attributes, r.min_active FROM target_designs d "
            "LEFT JOIN target_requirements r ON r.design_name = d.name ORDER BY d.name, r.attributes"
        )
        designs: dict[str, TargetDesign] = {}
        for name, attributes, min_active in rows.fetchall():
            design = designs.setdefault(name, TargetDesign(name, []))
            if attributes is not None:
                design.requirements.append(Requirement(json.loads(attributes), min_active))
        return list(designs.values())

    def get_design(self, name: str) -> TargetDesign | None:
        """The design called ``name``; None when there is none."""
        return next((d for d in self.list_designs() if d.name == name), None)

    def check_design(self, name_or_design: str | TargetDesign) -> TargetCoverageReport:
        """How far the runs meet each requirement of a design (by name, or one not registered)."""
        if isinstance(name_or_design, TargetDesign):
            design = name_or_design
            _validate(design)
        else:
            found = self.get_design(name_or_design)
            if found is None:
                raise NotFoundError(
                    f"No target design named {name_or_design!r}; list_designs() (joshreg designs) shows the "
                    "registered ones"
                )
            design = found
        self.sync()
        rows = self._con().execute(
            "SELECT t.key, t.tags, coalesce(jc.status, 'active') FROM run_tags t "
            "JOIN job_configs jc ON jc.run_hash = t.key WHERE t.scope = 'run_hash' ORDER BY t.key"
        )
        # attribute name -> matching key of its value -> runs: each requirement intersects sets
        index: dict[str, dict[Any, set[str]]] = {}
        status: dict[str, str] = {}
        for run_hash, text, run_status in rows.fetchall():
            status[run_hash] = run_status
            for name, value in json.loads(text).items():
                index.setdefault(name, {}).setdefault(json_key(value), set()).add(run_hash)
        report = []
        for req in design.requirements:
            matches: set[str] | None = None
            for name, value in req.attributes.items():
                runs = index.get(name, {}).get(json_key(value), set())
                matches = runs if matches is None else matches & runs
            ordered = sorted(matches or ())
            report.append(
                RequirementCoverage(
                    attributes=req.attributes,
                    min_active=req.min_active,
                    active_run_hashes=[h for h in ordered if status[h] == "active"],
                    non_active_matches=[(h, status[h]) for h in ordered if status[h] != "active"],
                )
            )
        return TargetCoverageReport(design.name, report)


class DesignWrites:
    """``register_design`` and ``delete_design``."""

    def register_design(self, design: TargetDesign) -> None:
        """Register ``design``, replacing the requirements of one of the same name wholesale."""
        _validate(design)
        requirements = [
            {"attributes": dict(sorted(json_value(r.attributes).items())), "min_active": int(r.min_active)}
            for r in design.requirements
        ]
        self._append(DesignRegistered(name=design.name, requirements=requirements))

    def delete_design(self, name: str) -> bool:
        """Delete the design called ``name``; False when there is none."""
        self.sync()
        row = self._con().execute(bind("SELECT 1 FROM target_designs WHERE name = ?", [name])).fetchone()
        if row is None:
            return False
        self._append(DesignDeleted(name=name))
        return True


def _validate(design: TargetDesign) -> None:
    """Upstream's refusals: an empty name, no requirements, empty attributes, ``min_active`` < 1;
    and two requirements with the same attributes (upstream's primary key)."""
    if not isinstance(design.name, str) or not design.name:
        raise InvalidArgumentError(f"a target design needs a non-empty name, got {design.name!r}")
    if not design.requirements:
        raise InvalidArgumentError(f"target design {design.name!r} has no requirements; add at least one")
    seen = set()
    for i, req in enumerate(design.requirements):
        if not isinstance(req.attributes, dict) or not req.attributes:
            raise InvalidArgumentError(
                f"requirement {i} of target design {design.name!r} has no attributes; "
                "a requirement names at least one attribute and its value"
            )
        if not isinstance(req.min_active, int) or req.min_active < 1:
            raise InvalidArgumentError(
                f"requirement {i} of target design {design.name!r} has min_active={req.min_active!r}; "
                "it must be an integer of at least 1"
            )
        key = json_key(req.attributes)
        if key in seen:
            raise InvalidArgumentError(
                f"target design {design.name!r} lists the attributes {req.attributes} twice; merge them"
            )
        seen.add(key)
