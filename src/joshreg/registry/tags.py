"""Attributes and tags: JSON annotations of runs, sessions, executions and the caller's own keys.

A run's attributes are the ``run_hash`` scope of ``run_tags``; ``session_id`` and ``run_id``
tag sessions and executions; any other scope (``site``, ...) is the caller's. Each call merges
its tags into the key's (like ``dict.update``) as one ``tags.set`` event, so every change is
kept, ordered by clock across writers, merged with other registries and visible in ``as_of``.
``TagReads`` is a mixin of every reader (views included), ``TagWrites`` of ``RunRegistry``.
"""

from __future__ import annotations

from typing import Any

from joshreg.errors import InvalidArgumentError
from joshreg.log.events import RESERVED_SCOPES, TagsSet, json_value
from joshreg.models import AttributeMatch
from joshreg.projection import queries as q
from joshreg.projection import tag_queries as tq


class TagReads:
    """Reading attributes and tags."""

    def get_attributes(self, run_hash: str) -> dict[str, Any]:
        """A run's attributes (``{}`` when it has none)."""
        self.sync()
        return tq.tags_of(self._con(), "run_hash", run_hash)

    def list_attribute_keys(self) -> list[str]:
        """Every attribute name any run has, sorted."""
        return self.list_tag_keys(scope="run_hash")

    def find_by_attribute(self, key: str, value: Any, *, current_only: bool = True) -> list[str]:
        """Run hashes whose attribute ``key`` equals ``value`` by JSON type (1 matches 1.0,
        ``"1"`` does not match 1, ``True`` matches only true); only active runs unless
        ``current_only=False``."""
        self.sync()
        return [h for h, _ in tq.find(self._con(), "run_hash", key, value, current_only=current_only)]

    def find_current_by_attribute(self, key: str, value: Any) -> list[AttributeMatch]:
        """The active runs ``find_by_attribute`` finds, each with its label and attributes."""
        self.sync()
        con = self._con()
        found = tq.find(con, "run_hash", key, value, current_only=True)
        labels = dict((h, label) for label, h in q.list_labels(con))
        return [AttributeMatch(h, labels.get(h), tags) for h, tags in found]

    def get_tags_by_session_id(self, session_id: str) -> dict[str, Any]:
        self.sync()
        return tq.tags_of(self._con(), "session_id", session_id)

    def get_tags_by_run_id(self, run_id: str) -> dict[str, Any]:
        self.sync()
        return tq.tags_of(self._con(), "run_id", run_id)

    def get_custom_tags(self, key: str, *, scope: str) -> dict[str, Any]:
        self.sync()
        return tq.tags_of(self._con(), scope, key)

    def list_tag_keys(self, *, scope: str) -> list[str]:
        """Every tag name used in ``scope``, sorted."""
        self.sync()
        return tq.tag_names(self._con(), scope)

    def find_tagged(self, tag_key: str, value: Any, *, scope: str = "run_hash") -> list[str]:
        """Keys of ``scope`` whose tag ``tag_key`` equals ``value`` (by JSON type, as
        ``find_by_attribute``), whatever their status."""
        self.sync()
        return [k for k, _ in tq.find(self._con(), scope, tag_key, value)]


class TagWrites:
    """Setting attributes and tags."""

    def _set_tags(self, scope: str, key: str, tags: dict[str, Any]) -> None:
        if not tags:
            raise InvalidArgumentError(f"no tags given for {scope} {key!r}; pass them as name=value")
        self._append(
            TagsSet(scope=scope, key=str(key), tags={str(k): json_value(v) for k, v in tags.items()})
        )

    def set_attributes(self, run_hash: str, **attrs: Any) -> None:
        """Merge ``attrs`` into a run's attributes (JSON values; ``KeyError`` for an unknown
        run, ``ValueError`` when none are given)."""
        self._require_hash(run_hash)
        self._set_tags("run_hash", run_hash, attrs)

    def tag_by_session_id(self, session_id: str, **tags: Any) -> None:
        """Merge ``tags`` into a session's tags."""
        self._require_session(session_id)
        self._set_tags("session_id", session_id, tags)

    def tag_by_run_id(self, run_id: str, **tags: Any) -> None:
        """Merge ``tags`` into an execution's tags."""
        self._require_run(run_id)
        self._set_tags("run_id", run_id, tags)

    def tag_custom(self, key: str, *, scope: str, **tags: Any) -> None:
        """Merge ``tags`` into ``key`` of a scope of your own (``site``, ``region``, ...)."""
        if scope in RESERVED_SCOPES:
            raise InvalidArgumentError(
                f"scope {scope!r} is the registry's own; use set_attributes, tag_by_session_id or "
                "tag_by_run_id for it, or choose another scope name"
            )
        if not isinstance(scope, str) or not scope:
            raise InvalidArgumentError(f"a scope must be a non-empty string, got {scope!r}")
        self._set_tags(scope, key, tags)
