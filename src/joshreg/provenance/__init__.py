"""Provenance: what exactly a run was, and how to run it again.

Job configurations and run hashes (compatible with joshpy), stored sources and their diffs,
bottles, Josh debug output, and the callback that records runs as they happen. May import the
log and projection; the callback and the bottle's registry side use the registry facade.
"""
