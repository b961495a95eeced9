"""DuckDB extensions loaded from their wheels: nothing is downloaded at run time.

Each ``duckdb-extension-<name>`` wheel ships the compiled extension for exactly one DuckDB
version, under ``extensions/v<version>/<name>.duckdb_extension``. ``wheel_extension`` finds the
file that matches the running DuckDB and ``LOAD``s it by path; when it cannot, the error names
the ``pip install`` that fixes it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

from joshreg.errors import JoshregError

__all__ = ["extension_file", "load_extension"]


def extension_file(name: str, error: type[JoshregError], hint: str = "") -> Path:
    """The file of extension ``name`` for the running DuckDB; raises ``error`` saying what to
    install (``hint`` is appended, such as an option that avoids the extension)."""
    package = f"duckdb-extension-{name}"
    install = f"pip install '{package}=={duckdb.__version__}'{hint}"
    spec = importlib.util.find_spec(package.replace("-", "_"))
    if spec is None or spec.origin is None:
        raise error(f"the DuckDB {name} extension is not installed: {install}")
    root = Path(spec.origin).parent / "extensions"
    wanted = root / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if wanted.exists():
        return wanted
    found = sorted(p.parent.name for p in root.glob(f"v*/{name}.duckdb_extension"))
    raise error(
        f"the installed {package} has builds for {', '.join(found) or 'nothing'}, "
        f"not for duckdb {duckdb.__version__}: {install}"
    )


def load_extension(
    con: duckdb.DuckDBPyConnection, name: str, error: type[JoshregError], hint: str = ""
) -> None:
    """``LOAD`` extension ``name`` into ``con`` from its wheel."""
    path = extension_file(name, error, hint)
    try:
        con.execute("LOAD '" + str(path).replace("'", "''") + "'")
    except duckdb.Error as e:
        raise error(f"the DuckDB {name} extension at {path} did not load: {e}") from e
