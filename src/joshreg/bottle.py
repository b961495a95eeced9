"""``joshreg.bottle``: bottles, archives that re-run one run, where joshpy users import them.

The code lives in ``joshreg.provenance.bottle``.
"""

from joshreg.provenance.bottle import (
    DEFAULT_CONFIG_NAME,
    BottleSpec,
    bottle_dirname,
    config_file_name,
    custom_tags,
    render_run_sh,
    unbottle,
    write_bottle,
)

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "BottleSpec",
    "bottle_dirname",
    "config_file_name",
    "custom_tags",
    "render_run_sh",
    "unbottle",
    "write_bottle",
]
