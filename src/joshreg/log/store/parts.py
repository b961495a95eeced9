"""Large claims on object storage, as parts under a manifest.

A claim larger than ``PART_SIZE`` (a result file of a big run, a compacted segment) goes up as
part objects ``parts/<claim name>/<sha256 of the whole>/<index>``, then a small manifest under
the claim's own name. Every object is a put-if-absent, and the manifest goes last: it is the
commit point, so every reader sees the claim whole or not at all, and two writers of one name
still have exactly one winner. Parts are named by the content of the whole claim, so a retry,
or a second writer of the same bytes, meets objects that are already right (compared byte for
byte, never overwritten); parts of a writer that lost the race or died before its manifest are
unreferenced and ``orphans`` finds them for deletion.

S3's own multipart upload would need a conditional ``CompleteMultipartUpload``, which the
client does not expose and not every service honours; plain conditional puts give the same
guarantee everywhere, and the parts go up and come down in parallel.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from joshreg.errors import StoreError

__all__ = ["MAGIC", "PART_SIZE", "Manifest", "join", "orphans", "parse", "split"]

#: How a manifest begins; no claim joshreg writes (Parquet, JSON, JSONL) begins so, and a claim
#: that did would be stored in parts, so a manifest is never mistaken for content.
MAGIC = b"joshreg-parts 1\n"
#: Claims above this many bytes go up in parts of this size (S3 takes up to 5 GiB in one put).
PART_SIZE = 32 << 20

FOLDER = "parts/"


@dataclass(frozen=True)
class Manifest:
    """What a claim stored in parts holds: its size, its digest and its parts in order."""

    size: int
    sha256: str
    parts: tuple[tuple[str, int], ...]

    def encode(self) -> bytes:
        body = {"size": self.size, "sha256": self.sha256, "parts": [list(p) for p in self.parts]}
        return MAGIC + json.dumps(body, separators=(",", ":")).encode() + b"\n"


def needs_parts(data: bytes, part_size: int) -> bool:
    return len(data) > part_size or data.startswith(MAGIC)


def split(name: str, data: bytes, part_size: int = PART_SIZE) -> tuple[Manifest, list[tuple[str, bytes]]]:
    """The manifest of claim ``name`` holding ``data`` and its parts, ``(name, bytes)`` each."""
    digest = hashlib.sha256(data).hexdigest()
    view = memoryview(data)
    pieces = [
        (f"{FOLDER}{name}/{digest}/{i:05d}", bytes(view[start : start + part_size]))
        for i, start in enumerate(range(0, max(len(data), 1), part_size))
    ]
    return Manifest(len(data), digest, tuple((n, len(b)) for n, b in pieces)), pieces


def parse(raw: bytes, name: str) -> Manifest | None:
    """The manifest ``raw`` holds, or None when ``raw`` is a claim's content itself."""
    if not raw.startswith(MAGIC):
        return None
    try:
        body = json.loads(raw[len(MAGIC) :])
        return Manifest(
            int(body["size"]), str(body["sha256"]), tuple((str(n), int(s)) for n, s in body["parts"])
        )
    except (ValueError, KeyError, TypeError) as e:
        raise StoreError(f"the manifest of {name} does not read ({e}); the claim is damaged") from e


def join(manifest: Manifest, pieces: Iterable[bytes | None], name: str, location: str) -> bytes:
    """The claim's bytes from its parts, checked against the manifest's sizes and digest."""
    out = []
    for (part, size), data in zip(manifest.parts, pieces, strict=True):
        if data is None:
            raise StoreError(f"part {part} of {name} is missing from {location}; the claim is damaged")
        if len(data) != size:
            raise StoreError(f"part {part} of {name} in {location} has {len(data)} bytes, not {size}")
        out.append(data)
    whole = b"".join(out)
    if len(whole) != manifest.size or hashlib.sha256(whole).hexdigest() != manifest.sha256:
        raise StoreError(f"the parts of {name} in {location} do not add up to what its manifest names")
    return whole


def owner(part: str) -> tuple[str, str] | None:
    """``(claim name, digest)`` of a part's object name; None for anything else."""
    if not part.startswith(FOLDER):
        return None
    head, _, index = part.rpartition("/")
    claim, _, digest = head.rpartition("/")
    if not index.isdigit() or len(digest) != 64 or not claim.startswith(FOLDER):
        return None
    return claim[len(FOLDER) :], digest


def orphans(
    parts: Iterable[tuple[str, float | None]], manifest_of: dict[str, Manifest | None], limit: float
) -> list[str]:
    """The parts no manifest names (a lost race, a writer that died before its manifest), among
    ``parts`` (``(name, stored at)``), keeping those of groups stored after ``limit``."""
    groups: dict[tuple[str, str], list[tuple[str, float | None]]] = {}
    for name, stamp in parts:
        key = owner(name)
        if key is not None:
            groups.setdefault(key, []).append((name, stamp))
    out = []
    for (claim, digest), members in groups.items():
        kept = manifest_of.get(claim)
        if kept is not None and kept.sha256 == digest:
            continue
        if any(stamp is None or stamp > limit for _, stamp in members):
            continue  # a writer may still be uploading; its manifest comes last
        out.extend(n for n, _ in members)
    return sorted(out)
