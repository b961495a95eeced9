"""Verifying what the log names by claim: every label stream (versions 1..N, each commit intact
and chained) and every result file (present, with its recorded SHA-256).
"""

from __future__ import annotations

import hashlib

import msgspec

from joshreg.log.codec import GENESIS, check_line, decode_commit
from joshreg.log.labels import PREFIX as LABEL_PREFIX
from joshreg.log.labels import commit_name
from joshreg.log.store.base import LogStore
from joshreg.operations.verify_log import Load
from joshreg.operations.verify_report import VerifyProblem, VerifyProgress, VerifyReport


def check_labels(store: LogStore, report: VerifyReport, prefix: str = LABEL_PREFIX) -> int:
    """Versions 1..N without a hole; each commit intact, numbered right and chained. ``prefix``
    is the store's own label log or a stream imported by a merge.

    Returns N, the highest version present."""
    own = prefix == LABEL_PREFIX
    blocked = " and no label can be changed until it is back" if own else ""
    versions: set[int] = set()
    for name in store.list_claims(prefix):
        base = name.rsplit("/", 1)[-1]
        if base.endswith(".json") and len(base) == 25 and base[:20].isdigit():
            versions.add(int(base[:20]))
    head = max(versions, default=0)
    missing = [v for v in range(1, head + 1) if v not in versions]
    for hole in _runs(missing):
        first, last = hole[0], hole[-1]
        what = f"label commit {first} is" if first == last else f"label commits {first}-{last} are"
        report.add(
            VerifyProblem(
                "label-hole",
                f"{what} missing though commit {head} exists: the file was deleted. Replay stops "
                f"before it, so label changes from commit {first} on are not applied{blocked}. "
                f"Restore it from a backup or another copy of the store's {prefix}/ folder.",
                commit_name(first, prefix),
            )
        )
    prev: str | None = GENESIS
    for version in range(1, head + 1):
        if version not in versions:
            prev = None  # the chain cannot be followed across a hole
            continue
        name = commit_name(version, prefix)
        data = store.read_claim(name)
        if data is None:
            prev = None
            continue
        report.label_commits += 1
        line = data[:-1] if data.endswith(b"\n") else data
        chk = check_line(line)
        problem = None
        if chk is None or b"\n" in line:
            problem = "it is not one complete commit line (truncated or appended to)"
        elif not chk.intact:
            problem = "it does not match its checksum (edited)"
        else:
            try:
                commit = decode_commit(line)
            except (msgspec.DecodeError, ValueError) as e:
                problem = f"it does not decode: {e}"
            else:
                if commit.version != version:
                    problem = f"it says it is version {commit.version} (renamed or copied)"
        if problem is not None:
            report.add(
                VerifyProblem(
                    "label-commit",
                    f"label commit {version} is damaged: {problem}. Replay stops before it, so "
                    f"label changes from commit {version} on are not applied{blocked}. Restore it "
                    "from a backup or another copy of the store.",
                    name,
                    1,
                )
            )
        elif prev is not None and chk is not None and chk.prev != prev:
            report.add(
                VerifyProblem(
                    "chain-broken",
                    f"label commit {version} does not follow commit {version - 1}: the previous "
                    "commit was replaced or rewritten. Compare both with a backup.",
                    name,
                    1,
                )
            )
        prev = chk.c if chk is not None else None
    return head


def _runs(numbers: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for n in numbers:
        if out and out[-1][-1] == n - 1:
            out[-1].append(n)
        else:
            out.append([n])
    return out


def check_blobs(
    store: LogStore, report: VerifyReport, loads: list[Load], progress: VerifyProgress | None
) -> None:
    """Every result file an event names exists and has the content hash the event recorded."""
    first: dict[str, Load] = {}
    for load in loads:
        first.setdefault(load.blob, load)
    report.blobs = len(first)
    for i, load in enumerate(first.values(), 1):
        where = f"{load.segment}:{load.line}"
        data = store.read_claim(load.blob)
        if data is None:
            report.add(
                VerifyProblem(
                    "missing-blob",
                    f"this result file, loaded by the event at {where}, is missing: its rows are not "
                    "in cell_data. Restore the file from a backup, or load the CSV export again "
                    "(the same content gets the same file name).",
                    load.blob,
                )
            )
        elif (got := hashlib.sha256(data).hexdigest()) != load.sha256:
            report.add(
                VerifyProblem(
                    "blob-hash",
                    f"this result file, loaded by the event at {where}, has SHA-256 {got[:12]}... "
                    f"but was stored with {load.sha256[:12]}...: its bytes were changed or damaged, "
                    "so cell_data may hold wrong rows. Restore the file from a backup or load the "
                    "CSV export again after moving the damaged file out of the store.",
                    load.blob,
                )
            )
        if progress:
            progress("result files", i, len(first))
