"""JSON Schema of the log's lines, generated from the event types: the contract for other writers.

``python -m joshreg.schemas [folder]`` writes ``events.schema.json`` (one segment line: any
event, its envelope and its ``p``/``c`` framing) and ``label-commit.schema.json`` (one label-log
commit) into ``folder`` (``schemas`` by default). The committed files in ``schemas/`` are
checked against this output by a test, so the types and the published contract cannot drift
apart.
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import Any

import msgspec

from joshreg.log.events import Event, LabelCommit

__all__ = ["generate", "main", "write_schemas"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_HEX8 = "^[0-9a-f]{8}$"

FRAMING: dict[str, dict[str, Any]] = {
    "p": {
        "type": "string",
        "pattern": _HEX8,
        "description": "Chain link: the `c` of the previous line of the same segment (or of the previous "
        'label commit), "00000000" for the first. Written second to last, exactly as '
        '`,"p":"<8 hex>"`.',
    },
    "c": {
        "type": "string",
        "pattern": _HEX8,
        "description": "Checksum: CRC-32 (lowercase hex, 8 digits) of every byte of the line before "
        '`","c":"`, that is the JSON object without its closing brace followed by `,"p":"<p>`. '
        'Written last, so the line ends with `"}` and a newline.',
    },
}

ENVELOPE: dict[str, dict[str, Any]] = {
    "event_id": {"description": "Unique id of the event: a UUIDv7 string (RFC 9562)."},
    "writer": {
        "description": "Id of the writer (one process) that appended the event; the segment is "
        "log/<writer>.jsonl. Unique without coordination; never reused."
    },
    "seq": {
        "minimum": 1,
        "description": "Sequence number within the writer: 1 for its first event, then +1 with no gaps.",
    },
    "hlc": {
        "minimum": 0,
        "description": "Hybrid logical clock of the writer, in nanoseconds since the Unix epoch; "
        "never decreases within a writer. Used for display and ordering ties, never for correctness.",
    },
    "actor": {"description": "Who wrote the event, as user@host."},
    "v": {"description": "Schema version of this event type (currently 1); newer versions are refused."},
}
_REQUIRED_ENVELOPE = ["event_id", "writer", "seq", "hlc", "actor"]

COMMIT_FIELDS: dict[str, dict[str, Any]] = {
    "version": {
        "minimum": 1,
        "description": "The commit's number: 1, 2, 3, ... with no gaps, equal to the number in its "
        "claim name.",
    },
    "event_id": {"description": "Unique id of the commit: a UUIDv7 string (RFC 9562)."},
    "writer": {"description": "Id of the writer whose process made the commit (may be empty)."},
    "hlc": ENVELOPE["hlc"],
    "actor": ENVELOPE["actor"],
    "actions": {"description": "The label changes of one label_run call, applied in this order."},
}

_EVENTS_DESCRIPTION = (
    "One line of a joshreg event segment (log/<writer>.jsonl): a JSON object holding one event, "
    "tagged by `type`, with the writer's envelope and, last, the framing fields `p` and `c`. "
    "Lines are UTF-8, end with a newline, and contain no other newline. See schemas/README.md."
)
_COMMIT_DESCRIPTION = (
    "One commit of the joshreg label log: the single line (with framing fields `p` and `c`, then a "
    "newline) of the claim labels/<version as 20 digits>.json."
)


def _clean_descriptions(defs: dict[str, Any]) -> None:
    for d in defs.values():
        if "description" in d:
            d["description"] = inspect.cleandoc(d["description"])


def _frame(definition: dict[str, Any]) -> None:
    """Add the framing fields, which every stored line carries after the object's own fields."""
    definition["properties"].update({k: dict(v) for k, v in FRAMING.items()})
    definition["required"] = [*definition.get("required", []), "p", "c"]


def events_schema() -> dict[str, Any]:
    """The schema of one segment line."""
    schema = msgspec.json.schema(Event)
    defs = schema["$defs"]
    _clean_descriptions(defs)
    for definition in defs.values():
        props = definition["properties"]
        for name, doc in ENVELOPE.items():
            props[name] = {**props[name], **doc}
        required = definition.get("required", [])
        definition["required"] = [*required, *(n for n in _REQUIRED_ENVELOPE if n not in required)]
        _frame(definition)
    return {"$schema": DRAFT, "title": "joshreg event line", "description": _EVENTS_DESCRIPTION, **schema}


def label_commit_schema() -> dict[str, Any]:
    """The schema of one label-log commit."""
    schema = msgspec.json.schema(LabelCommit)
    _clean_descriptions(schema["$defs"])
    definition = schema["$defs"]["LabelCommit"]
    for name, doc in COMMIT_FIELDS.items():
        definition["properties"][name] = {**definition["properties"][name], **doc}
    _frame(definition)
    return {"$schema": DRAFT, "title": "joshreg label commit", "description": _COMMIT_DESCRIPTION, **schema}


def generate() -> dict[str, str]:
    """File name → text of every schema file, exactly as ``write_schemas`` writes it."""
    return {
        name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in (
            ("events.schema.json", events_schema()),
            ("label-commit.schema.json", label_commit_schema()),
        )
    }


def write_schemas(folder: str | Path = "schemas") -> list[Path]:
    """Write the schema files into ``folder`` (created if missing); return their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in generate().items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    """``python -m joshreg.schemas [folder]``: regenerate the published schemas."""
    parser = argparse.ArgumentParser(prog="python -m joshreg.schemas", description=main.__doc__)
    parser.add_argument("folder", nargs="?", default="schemas", help="where to write (default: schemas)")
    args = parser.parse_args(argv)
    for path in write_schemas(args.folder):
        print(path)


if __name__ == "__main__":
    main()
