"""A run's stored sources as files: read-only exports, side-by-side IDE diffs, text diffs.

The registry keeps the exact ``.jshc`` and ``.josh`` text every run used. This module turns
that text into files people can open: exports whose header says they are snapshots (so nobody
edits them expecting an effect), the path to show for each side of a diff (the real source when
it still matches, otherwise an export that says whether the source drifted), the IDE launch,
and a unified diff for terminals and CI. It works on plain data (``ConfigInfo``,
``SessionInfo``) so that it stays below the registry; imports ``errors`` and ``models`` only.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from joshreg.errors import IdeUnavailableError, InvalidArgumentError, SourceNotStoredError
from joshreg.models import ConfigInfo, ConfigSourceInfo, SessionInfo

__all__ = [
    "IDE_COMMANDS",
    "Kind",
    "check_ide",
    "config_source",
    "diff_pair",
    "diff_path",
    "export_file",
    "export_text",
    "josh_source",
    "launch_ide",
    "make_output_dir",
    "run_title",
    "source_info",
    "stored_text",
    "unified_diff",
]

Kind = Literal["config", "josh"]

# IDE name (as users pass it) → the command its installer puts on PATH.
IDE_COMMANDS: dict[str, str] = {"cursor": "cursor", "vscode": "code"}

_SUFFIX: dict[str, str] = {"config": ".jshc", "josh": ".josh"}
_WHAT: dict[str, str] = {"config": "configuration (.jshc)", "josh": "Josh source (.josh)"}


def _one_line(text: str) -> str:
    """A name or path made safe to sit inside a one-line comment or diff header."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def export_text(kind: Kind, run_hash: str, content: str, *, drifted_from: Path | None = None) -> str:
    """Stored text under a comment header marking it as a snapshot of run ``run_hash``.

    The header keeps upstream's shape (a ``READ-ONLY`` line, ``# Run: <hash>``, advice, a
    blank line) so tools that strip it keep working. ``drifted_from`` names a source file that
    still exists but no longer matches; the header then says so, since a reader comparing it
    with that file would otherwise be puzzled by the difference.
    """
    lines = [f"# READ-ONLY snapshot of the {_WHAT[kind]} stored in the run registry.", f"# Run: {run_hash}"]
    if drifted_from is not None:
        lines.append(
            f"# The source file still exists at {_one_line(str(drifted_from))} "
            "but was modified since registration;"
        )
        lines.append("# this is the text the run was registered with. Editing this copy has no effect.")
    elif kind == "config":
        lines.append("# Editing this file has no effect on the registry or on the run.")
        lines.append("# To change the run, edit the source .jshc and run the sweep again.")
    else:
        lines.append("# Editing this file has no effect on the registry or on the run.")
    return "\n".join(lines) + "\n\n" + content


def _file_name(name: str, run_hash: str, kind: Kind) -> str:
    """``<name>.jshc``/``.josh``; a label is free text, so it cannot climb out of the directory."""
    safe = "".join("_" if c in "/\\\0" or not c.isprintable() else c for c in name)
    if safe in ("", ".", ".."):
        safe = run_hash
    return safe + _SUFFIX[kind]


def _write_read_only(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically as a read-only file, replacing what was there.

    Read-only on disk too, so an editor warns before someone edits a snapshot; written beside
    the target and renamed, so a reader never sees half a file and an older read-only export
    is replaced without needing write permission on it.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_file(
    kind: Kind,
    cfg: ConfigInfo,
    name: str,
    output_dir: str | os.PathLike[str],
    *,
    drifted_from: Path | None = None,
) -> Path:
    """Write run ``cfg``'s stored text to ``output_dir/<name>.<ext>`` (dirs created); return it.

    ``name`` is what the caller resolved the run by (its label, or its hash). Raises
    ``SourceNotStoredError`` when the run has no stored Josh source.
    """
    text = export_text(kind, cfg.run_hash, stored_text(kind, cfg), drifted_from=drifted_from)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / _file_name(name, cfg.run_hash, kind)
    _write_read_only(path, text)
    return path


def stored_text(kind: Kind, cfg: ConfigInfo) -> str:
    """The text the registry stored for the run; the Josh source may not have been stored."""
    if kind == "config":
        return cfg.config_content
    if cfg.josh_content is None:
        source = f" The file it was registered from is {cfg.josh_path}." if cfg.josh_path else ""
        raise SourceNotStoredError(
            f"Run {cfg.run_hash} was registered without its Josh source, so there is none to "
            "export or compare. Re-register the run with register_run(..., josh_content=<text "
            "of the .josh file>), in a new registry: a registry keeps the first registration "
            f"of each run hash.{source}"
        )
    return cfg.josh_content


def make_output_dir(output_dir: str | os.PathLike[str] | None) -> Path:
    """``output_dir`` created if needed, or a fresh temporary directory when None.

    The temporary directory is left in place: an IDE opens its files after we return.
    """
    if output_dir is None:
        return Path(tempfile.mkdtemp(prefix="joshreg_inspect_"))
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


# --- where the sources came from -----------------------------------------------------------------


def source_info(path: str | os.PathLike[str] | None, stored: str | None) -> ConfigSourceInfo:
    """Whether the file a run was registered from still exists and still holds the stored text.

    Never raises: a path that cannot be read counts as not existing (upstream's rule), and a
    file that is not UTF-8 text exists but cannot match the stored text.
    """
    if path is None or stored is None:
        return ConfigSourceInfo(path=None, exists=False, content_matches=False)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ConfigSourceInfo(path=p, exists=True, content_matches=False)
    except (OSError, ValueError):
        return ConfigSourceInfo(path=p, exists=False, content_matches=False)
    return ConfigSourceInfo(path=p, exists=True, content_matches=text == stored)


def config_source(cfg: ConfigInfo | None, session: SessionInfo | None) -> ConfigSourceInfo:
    """The ``.jshc`` a run came from: ``config_path`` in its first session's job config.

    Templated sweeps have no such file (the config was rendered from a template), so they get
    ``(None, False, False)``, as does a run or session that cannot be found.
    """
    job_config = (session.metadata or {}).get("job_config") if session is not None else None
    path = job_config.get("config_path") if isinstance(job_config, dict) else None
    if cfg is None or not isinstance(path, str) or not path:
        return ConfigSourceInfo(path=None, exists=False, content_matches=False)
    return source_info(path, cfg.config_content)


def josh_source(cfg: ConfigInfo | None) -> ConfigSourceInfo:
    """The ``.josh`` a run came from (``josh_path``) compared with the stored Josh source."""
    if cfg is None or not cfg.josh_path:
        return ConfigSourceInfo(path=None, exists=False, content_matches=False)
    return source_info(cfg.josh_path, cfg.josh_content)


def diff_path(kind: Kind, cfg: ConfigInfo, name: str, source: ConfigSourceInfo, output_dir: Path) -> Path:
    """The file to show for one side of an IDE diff.

    The real source when it still holds the stored text (so the user can edit it in place);
    otherwise an export of the stored text, whose header says when the source has drifted.
    """
    if source.path is not None and source.exists and source.content_matches:
        return Path(os.path.abspath(source.path))
    drifted = source.path if source.path is not None and source.exists else None
    return export_file(kind, cfg, name, output_dir, drifted_from=drifted)


def diff_pair(
    kind: Kind,
    sides: Sequence[tuple[str, ConfigInfo, ConfigSourceInfo]],
    output_dir: Path,
) -> list[Path]:
    """``diff_path`` for each ``(name, config, source)`` side, never two sides in one file.

    Two labels can map to one file name (``a/b`` and ``a_b``); the later side then goes into
    a numbered subdirectory so each side keeps its own text.
    """
    paths: list[Path] = []
    owner: dict[str, str] = {}  # export file name -> the run whose text it holds
    for i, (name, cfg, source) in enumerate(sides):
        file_name = _file_name(name, cfg.run_hash, kind)
        own = owner.setdefault(file_name, cfg.run_hash) == cfg.run_hash
        out = output_dir if own else output_dir / str(i + 1)
        paths.append(diff_path(kind, cfg, name, source, out))
    return paths


# --- showing differences -------------------------------------------------------------------------


def run_title(name: str, cfg: ConfigInfo) -> str:
    """How a diff names a run: ``label (hash)`` when it has a label, else its hash."""
    label = cfg.label or (name if name != cfg.run_hash else None)
    return _one_line(f"{label} ({cfg.run_hash})" if label else cfg.run_hash)


def _mark_missing_newline(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if line.endswith("\n"):
            yield line
        else:
            yield line + "\n"
            yield "\\ No newline at end of file\n"


def unified_diff(a: str, b: str, a_title: str, b_title: str, context: int = 3) -> str:
    """``a`` → ``b`` as unified diff text, as diff(1) prints it; empty when they are equal."""
    if context < 0:
        raise InvalidArgumentError(f"context must be 0 or more lines, got {context}")
    lines = difflib.unified_diff(
        a.splitlines(keepends=True),
        b.splitlines(keepends=True),
        fromfile=a_title,
        tofile=b_title,
        n=context,
    )
    return "".join(_mark_missing_newline(lines))


def check_ide(ide: str) -> str:
    """The command of a supported IDE; ``InvalidArgumentError`` (a ValueError) otherwise."""
    command = IDE_COMMANDS.get(ide)
    if command is None:
        raise InvalidArgumentError(f"Unknown IDE {ide!r}. Supported: {', '.join(sorted(IDE_COMMANDS))}")
    return command


def launch_ide(ide: str, paths: Sequence[Path]) -> None:
    """Open ``paths`` side by side: ``<code|cursor> --diff p1 p2``, without a shell.

    The exit status is not checked, as upstream: the IDE CLI hands the files to a window and
    returns, and its status says nothing about the files.
    """
    command = check_ide(ide)
    exe = shutil.which(command)
    if exe is None:
        name = "VS Code" if ide == "vscode" else "Cursor"
        files = " and ".join(str(p) for p in paths)
        raise IdeUnavailableError(
            f"The {name} command line '{command}' is not on PATH. In {name}, open the Command "
            f"Palette and run \"Shell Command: Install '{command}' command in PATH\", then open a "
            f"new terminal. The files to compare are {files}; diff_configs()/diff_josh() or "
            "`joshreg diff` show the difference as text without an IDE."
        )
    # Absolute paths, so a relative source path starting with "-" cannot read as an option.
    subprocess.run([exe, "--diff", *(os.path.abspath(p) for p in paths)], check=False)
