"""The projection: the log's events as DuckDB tables.

Table definitions, the projector (catch-up and rebuild, checkpoint in the same transaction),
the read queries over the tables, time travel, snapshots for other processes, and what a
registry file is before joshreg writes it. May import ``joshreg.log``, ``joshreg.errors`` and
``joshreg.models``.
"""
