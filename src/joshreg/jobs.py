"""``joshreg.jobs``: job configurations, their jobs and upstream's run hash, for joshpy users.

The code lives in ``joshreg.provenance.jobs``.
"""

from joshreg.provenance.jobs import (
    CompoundSweepParameter,
    ConfigSweepParameter,
    ExpandedJob,
    FileSweepParameter,
    JobConfig,
    JobExpander,
    JobSet,
    SweepConfig,
    compute_run_hash,
    expand_values,
    hash_file,
)

__all__ = [
    "CompoundSweepParameter",
    "ConfigSweepParameter",
    "ExpandedJob",
    "FileSweepParameter",
    "JobConfig",
    "JobExpander",
    "JobSet",
    "SweepConfig",
    "compute_run_hash",
    "expand_values",
    "hash_file",
]
