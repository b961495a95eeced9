"""Looking at one run closely: its stored sources, diffs, bottles and Josh debug output.

A mixin of ``RegistryReader``; the work is in ``joshreg.provenance``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joshreg.errors import (
    NoDebugOutputError,
    RunNotFoundError,
    SourceNotStoredError,
)
from joshreg.models import (
    ConfigInfo,
    ConfigSourceInfo,
)
from joshreg.projection import queries as q
from joshreg.provenance import sources

if TYPE_CHECKING:
    from joshreg.provenance.bottle import BottleSpec
    from joshreg.provenance.debug import DebugMessageStore

# Bottles and debug files are imported when used: a CLI listing need not load them.


class SourceReads:
    """A run's stored sources, their diffs and IDE views, its bottle and its debug output."""

    def _named_config(self, label_or_hash: str) -> ConfigInfo:
        """The run a label or hash names (a label wins); ``RunNotFoundError`` otherwise."""
        cfg = q.get_config(self._con(), self.resolve_label_or_hash(label_or_hash))
        if cfg is None:  # cannot happen: resolve_label_or_hash checked it
            raise RunNotFoundError(f"No run found for '{label_or_hash}'")
        return cfg

    def export_config(self, label_or_hash: str, output_dir: str | os.PathLike[str]) -> Path:
        """Write a run's stored .jshc to ``output_dir/<label or hash>.jshc``; return its path.

        A read-only snapshot under a ``READ-ONLY`` header: the registry's copy is what the run
        used, whatever happened to the source file since. Replaces an earlier export.
        """
        cfg = self._named_config(label_or_hash)
        return sources.export_file("config", cfg, str(label_or_hash), output_dir)

    def export_josh(self, label_or_hash: str, output_dir: str | os.PathLike[str]) -> Path:
        """Write a run's stored Josh source to ``output_dir/<label or hash>.josh``; return its path.

        ``SourceNotStoredError`` (a KeyError and a ValueError) when the run was registered
        without ``josh_content``.
        """
        cfg = self._named_config(label_or_hash)
        return sources.export_file("josh", cfg, str(label_or_hash), output_dir)

    def resolve_config_source(self, run_hash: str) -> ConfigSourceInfo:
        """The .jshc file a run was registered from, and whether it still holds the stored text.

        The path is the first session's ``job_config["config_path"]``; templated sweeps, unknown
        runs and missing sessions give ``ConfigSourceInfo(None, False, False)``. Never raises.
        """
        self.sync()
        con = self._con()
        cfg = q.get_config(con, run_hash)
        session = q.get_session(con, cfg.session_id) if cfg is not None else None
        return sources.config_source(cfg, session)

    def resolve_josh_source(self, run_hash: str) -> ConfigSourceInfo:
        """The .josh file a run was registered from (``josh_path``), compared with the stored text."""
        return sources.josh_source(self.get_config_by_hash(run_hash))

    def _source_info(self, kind: sources.Kind, cfg: ConfigInfo) -> ConfigSourceInfo:
        if kind == "josh":
            return sources.josh_source(cfg)
        return sources.config_source(cfg, q.get_session(self._con(), cfg.session_id))

    def _open_diff(
        self, kind: sources.Kind, a: str, b: str, ide: str, output_dir: str | os.PathLike[str] | None
    ) -> tuple[Path, Path]:
        sources.check_ide(ide)
        sides = []
        for name in (a, b):
            cfg = self._named_config(name)
            sources.stored_text(kind, cfg)  # fail before writing anything
            sides.append((str(name), cfg, self._source_info(kind, cfg)))
        p1, p2 = sources.diff_pair(kind, sides, sources.make_output_dir(output_dir))
        sources.launch_ide(ide, [p1, p2])
        return p1, p2

    def compare_configs(
        self, a: str, b: str, ide: str = "vscode", *, output_dir: str | os.PathLike[str] | None = None
    ) -> tuple[Path, Path]:
        """Open two runs' configs side by side in VS Code (``ide="vscode"``) or Cursor.

        Each side is the real source file while it still matches the stored text (editable in
        place), else a read-only export, whose header says when the source has drifted
        (exports go to ``output_dir`` or a fresh temporary directory). Unknown ``ide`` →
        ``ValueError``; its command not on PATH → ``IdeUnavailableError`` (a RuntimeError).
        ``diff_configs`` gives the same comparison as text.
        """
        return self._open_diff("config", a, b, ide, output_dir)

    def compare_josh(
        self, a: str, b: str, ide: str = "vscode", *, output_dir: str | os.PathLike[str] | None = None
    ) -> tuple[Path, Path]:
        """``compare_configs`` for the runs' Josh sources."""
        return self._open_diff("josh", a, b, ide, output_dir)

    def _diff_text(self, kind: sources.Kind, a: str, b: str, context: int) -> str:
        ca, cb = self._named_config(a), self._named_config(b)
        return sources.unified_diff(
            sources.stored_text(kind, ca),
            sources.stored_text(kind, cb),
            sources.run_title(str(a), ca),
            sources.run_title(str(b), cb),
            context,
        )

    def diff_configs(self, a: str, b: str, context: int = 3) -> str:
        """Unified diff of two runs' stored configs (``label (hash)`` headers); "" when equal.

        For terminals, CI logs and notebooks, where no IDE is at hand.
        """
        return self._diff_text("config", a, b, context)

    def diff_josh(self, a: str, b: str, context: int = 3) -> str:
        """Unified diff of two runs' stored Josh sources; "" when equal."""
        return self._diff_text("josh", a, b, context)

    def _bottle_spec(self, label_or_hash: str) -> BottleSpec:
        """What a bottle of one run holds, read from the tables and the log."""
        from joshreg.provenance.bottle import BottleSpec, config_file_name, custom_tags

        run_hash = self.resolve_label_or_hash(label_or_hash)
        con = self._con()
        cfg = q.get_config(con, run_hash)
        if cfg is None:  # cannot happen: resolve_label_or_hash checked it
            raise RunNotFoundError(f"No run found for '{label_or_hash}'")
        if cfg.josh_content is None:
            source = f" The file it was registered from is {cfg.josh_path}." if cfg.josh_path else ""
            raise SourceNotStoredError(
                f"Run {run_hash} was registered without its Josh source, so it cannot be bottled. "
                "Re-register the run with register_run(..., josh_content=<text of the .josh file>), "
                f"in a new registry: a registry keeps the first registration of each run hash.{source}"
            )
        session = q.get_session(con, cfg.session_id)
        metadata = (session.metadata if session else None) or {}
        job_config = metadata.get("job_config")
        job_config = job_config if isinstance(job_config, dict) else {}
        replicates = job_config.get("replicates", 1)
        simulation = (session.simulation if session else None) or job_config.get("simulation") or "Main"
        parameters = q.registered_parameters(con, run_hash) or {}
        data_files = {n: str(f.get("path") or "") for n, f in (cfg.file_mappings or {}).items()}
        latest_id = q.latest_run_id(con, run_hash)
        latest = q.get_run(con, latest_id) if latest_id is not None else None
        git = metadata.get("git_hash")
        return BottleSpec(
            run_hash=run_hash,
            label=cfg.label,
            josh_content=cfg.josh_content,
            josh_path=cfg.josh_path,
            config_name=config_file_name(job_config),
            config_content=cfg.config_content,
            data_files=data_files,
            simulation=str(simulation),
            replicates=replicates if isinstance(replicates, int) and replicates > 0 else 1,
            parameters=parameters,
            tags=custom_tags(parameters, run_hash, cfg.label, data_files),
            exit_code=latest.exit_code if latest else None,
            error_message=latest.error_message if latest else None,
            events=q.run_events(con, run_hash),
            git_hash=git if isinstance(git, str) else None,
        )

    def bottle(
        self,
        label_or_hash: str,
        output_dir: str | os.PathLike[str] = Path("bottles"),
        cli: Any = None,
        omit_jshd: bool = False,
    ) -> Path:
        """Pack a run into a self-contained ``.tar.gz`` that re-runs it with Java and the jar.

        Holds the stored Josh source and config (under the config's original name), the data
        files (none with ``omit_jshd``), ``run.sh`` with the session's replicate count and the
        parameters as registered, and ``manifest.json`` with provenance and the run's events.
        Returns ``<output_dir>/bottle_<label>_<hash>_<UTC timestamp>.tar.gz``. Unknown run →
        ``RunNotFoundError`` (a KeyError); no stored Josh source → ``SourceNotStoredError`` (a
        ValueError); a missing data file → ``FileNotFoundError`` unless ``omit_jshd``.
        ``cli`` (joshpy's JoshCLI, or anything with a ``jar_path``) adds the jar's version and
        SHA-256 to the manifest.
        """
        from joshreg.provenance.bottle import write_bottle

        return write_bottle(self._bottle_spec(label_or_hash), output_dir, omit_jshd=omit_jshd, cli=cli)

    def _debug_paths(
        self, label_or_hash: str, run_id: str | None, entity_types: list[str] | None
    ) -> tuple[str, list[Path]]:
        """The execution chosen and the distinct paths of its registered debug outputs."""
        from joshreg.provenance.debug import output_path

        if isinstance(entity_types, str):
            entity_types = [entity_types]  # one type, not its letters
        types = [t.removeprefix("debug.") for t in entity_types] if entity_types else None
        rid = self.resolve_run_id(self.resolve_label_or_hash(label_or_hash), run_id)
        paths = dict.fromkeys(output_path(p) for _, p in q.debug_outputs(self._con(), rid, types))
        return rid, list(paths)

    def get_debug_output_files(
        self,
        label_or_hash: str,
        *,
        run_id: str | None = None,
        entity_types: list[str] | None = None,
        existing_only: bool = True,
    ) -> list[Path]:
        """Debug files (``debug.<type>`` outputs) of one execution of a run, ordered by type, path.

        The execution is ``run_id`` or the run's latest. ``entity_types`` (``["organism"]``)
        selects types (None or empty: all); ``existing_only`` drops files not on disk.
        ``file://`` URIs are read as the local files they name.
        """
        _, paths = self._debug_paths(label_or_hash, run_id, entity_types)
        return [p for p in paths if p.exists()] if existing_only else paths

    def load_debug(
        self,
        label_or_hash: str,
        *,
        run_id: str | None = None,
        entity_types: list[str] | None = None,
        existing_only: bool = True,
    ) -> DebugMessageStore:
        """Parse the files of ``get_debug_output_files`` (same arguments) into one store.

        Messages keep file order; parse errors add up (a ``DebugParseWarning`` per file with
        some). ``NoDebugOutputError`` (a ValueError) when there is no file to load;
        ``FileNotFoundError`` for a missing file when ``existing_only=False``.
        """
        rid, registered = self._debug_paths(label_or_hash, run_id, entity_types)
        files = [p for p in registered if p.exists()] if existing_only else registered
        if not files:
            detail = (
                f"; its {len(registered)} registered file(s) are missing, e.g. {registered[0]}"
                if registered
                else ""
            )
            raise NoDebugOutputError(
                f"No debug output files found for '{label_or_hash}'. Ensure debugFiles are "
                f"configured and outputs were registered (execution {rid}{detail})"
            )
        from joshreg.provenance.debug import load_debug_file

        store = load_debug_file(files[0])
        for path in files[1:]:
            store.merge(load_debug_file(path))
        return store
