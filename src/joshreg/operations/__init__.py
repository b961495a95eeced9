"""Operations on a whole store: verify, compact, merge, watch, and import from joshpy.

Each works on the log and the projection, never through the registry facade (which calls
them). May import ``joshreg.log``, ``joshreg.projection``, ``joshreg.results`` (the CSV blob
format), ``joshreg.errors`` and ``joshreg.models``.
"""
