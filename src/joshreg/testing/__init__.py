"""Helpers for tests of joshreg and of code built on it.

- ``joshreg.testing.store_contract``: the ``LogStore`` contract suite (``LogStoreContract``,
  ``ReadOnlyStoreContract``), run against every store backend; it imports pytest.
- ``joshreg.testing.registries``: dump and compare registries' tables, a fake job config.

Nothing here is imported by ``import joshreg``.
"""
