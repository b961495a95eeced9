"""Commands about what a run was: diff, export, bottle, unbottle."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TextIO

from joshreg.cli.commands import EXIT_DIFFERENT, EXIT_OK, Arg, arg, command, count, open_registry
from joshreg.cli.output import emit_json
from joshreg.errors import JoshregError

# The IDEs ``--ide`` opens (``joshreg.provenance.sources.IDE_COMMANDS``; a test keeps them equal).
IDES = ("cursor", "vscode")


@command(
    "diff",
    "Show how two runs' stored configs (or Josh sources, --josh) differ, as a unified diff.",
    """
    A and B are labels or run hashes (a label wins when both match). The text compared is
    what the registry stored at registration, not today's files. The exit status is 0 when
    they are identical and 1 when they differ, as with diff(1). --ide opens both side by
    side in VS Code or Cursor instead: the real source file while it still matches,
    otherwise a read-only export.

    examples:
      joshreg diff demo-output/sweep.duckdb baseline candidate
      joshreg diff demo-output/sweep.duckdb baseline candidate --josh --context 0
      joshreg diff demo-output/sweep.duckdb baseline candidate --ide vscode
    """,
    arg("a", metavar="A", help="a label or run hash (the old side)"),
    arg("b", metavar="B", help="a label or run hash (the new side)"),
    arg("--josh", action="store_true", help="compare the Josh sources, not the configs"),
    arg("--context", metavar="N", type=count, default=3, help="lines of context (default: 3)"),
    arg("--ide", choices=IDES, help="open both side by side in this IDE instead"),
    as_of=True,
)
def diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Like diff(1): the unified diff on stdout, exit 0 when equal and 1 when they differ."""
    with open_registry(args) as reg:
        if args.ide is not None:
            compare = reg.compare_josh if args.josh else reg.compare_configs
            p1, p2 = compare(args.a, args.b, ide=args.ide)
            if args.json:
                emit_json([{"a": str(p1), "b": str(p2), "ide": args.ide}], out)
            else:
                out.write(f"opened in {args.ide}:\n  {p1}\n  {p2}\n")
            return EXIT_OK
        text = (reg.diff_josh if args.josh else reg.diff_configs)(args.a, args.b, context=args.context)
    if args.json:
        kind = "josh" if args.josh else "config"
        emit_json([{"a": args.a, "b": args.b, "kind": kind, "identical": not text, "diff": text}], out)
    else:
        out.write(text)
    return EXIT_OK if not text else EXIT_DIFFERENT


@command(
    "export",
    "Write a run's stored config (and/or Josh source) to read-only files and print their paths.",
    """
    RUN is a label or a run hash; the files are named after it (baseline.jshc,
    baseline.josh) and start with a READ-ONLY header naming the run: they show what was
    run, editing them changes nothing. Without -o they go to a new temporary directory;
    an earlier export of the same name in DIR is replaced.

    examples:
      joshreg export demo-output/sweep.duckdb baseline
      joshreg export demo-output/sweep.duckdb baseline --both -o exports/
    """,
    arg("run", metavar="RUN", help="a label or run hash"),
    Arg(
        (),
        {
            "exclusive": [
                arg(
                    "--config",
                    dest="what",
                    action="store_const",
                    const="config",
                    help="the .jshc config (the default)",
                ),
                arg("--josh", dest="what", action="store_const", const="josh", help="the .josh source"),
                arg("--both", dest="what", action="store_const", const="both", help="both files"),
            ],
            "defaults": {"what": "config"},
        },
    ),
    arg("-o", "--output-dir", metavar="DIR", type=Path, help="where to write (default: a temp dir)"),
    as_of=True,
)
def export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from joshreg.provenance.sources import make_output_dir

    with open_registry(args) as reg:
        # The Josh source first: a run without it then fails before any file is written.
        exports = {"josh": reg.export_josh, "config": reg.export_config}
        kinds = [k for k in ("josh", "config") if args.what in (k, "both")]
        directory = args.output_dir if args.output_dir is not None else make_output_dir(None)
        try:
            paths = {k: exports[k](args.run, directory) for k in kinds}
        except BaseException:
            if args.output_dir is None:
                directory.rmdir()  # the temporary directory is still empty: leave nothing behind
            raise
    ordered = [(k, paths[k]) for k in ("config", "josh") if k in paths]
    if args.json:
        emit_json(({"run": args.run, "kind": k, "path": str(p)} for k, p in ordered), out)
    else:
        out.write("".join(f"{p}\n" for _, p in ordered))
    return EXIT_OK


@command(
    "bottle",
    "Pack a run into a self-contained .tar.gz that re-runs it with Java and the Josh jar.",
    """
    RUN is a label or a run hash. The archive holds the stored Josh source and config, the
    data files (not with --omit-jshd), run.sh and manifest.json (provenance and the run's
    events); its path is printed. Inside: ./run.sh /path/to/joshsim-fat.jar

    examples:
      joshreg bottle demo-output/sweep.duckdb baseline
      joshreg bottle demo-output/sweep.duckdb 3f2a9c41d07e -o bottles/ --omit-jshd
    """,
    arg("run", metavar="RUN", help="a label or run hash"),
    arg(
        "-o",
        "--output-dir",
        metavar="DIR",
        type=Path,
        default=Path("bottles"),
        help="where to write the archive (default: bottles)",
    ),
    arg("--omit-jshd", action="store_true", help="leave the data files out"),
    as_of=True,
)
def bottle(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_registry(args) as reg:
        try:
            archive = reg.bottle(args.run, args.output_dir, omit_jshd=args.omit_jshd)
        except FileNotFoundError as e:  # a data file is gone: one line, like other errors
            raise JoshregError(str(e)) from e
    if args.json:
        emit_json([{"run": args.run, "archive": str(archive), "omit_jshd": args.omit_jshd}], out)
    else:
        out.write(f"{archive}\n")
    return EXIT_OK


@command(
    "unbottle",
    "Extract a bottle safely and show what it holds and how to run it (no registry needed).",
    """
    The whole archive is checked before anything is written: an archive with absolute
    paths, '..', links or devices, or without a manifest and a config, is refused. Without -d
    it goes to a new temporary directory. --data-dir points the data files at your own copy
    (for bottles made with --omit-jshd).

    examples:
      joshreg unbottle bottles/bottle_baseline_3f2a9c41d07e_20260101_120000.tar.gz -d rerun/
      joshreg unbottle bottle.tar.gz --data-dir /data/josh --json
    """,
    arg("archive", metavar="ARCHIVE", type=Path, help="a bottle (.tar.gz)"),
    arg("-d", "--extract-dir", metavar="DIR", type=Path, help="where to extract (default: a temp dir)"),
    arg("--data-dir", metavar="DIR", type=Path, help="take the data files from here"),
    arg("--run-hash", metavar="H", help="only this run of a sweep bottle"),
    registry=False,
)
def unbottle(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from joshreg.provenance.bottle import unbottle as extract

    try:
        jobs = extract(args.archive, args.extract_dir, args.data_dir, args.run_hash)
    except FileNotFoundError as e:
        raise JoshregError(str(e)) from e
    records = [
        {
            "directory": str(Path(job.config_path).parent),
            "simulation": job.simulation,
            "replicates": job.replicates,
            "source_path": None if job.source_path is None else str(job.source_path),
            "config_path": str(job.config_path),
            "file_mappings": {k: str(v) for k, v in sorted(job.file_mappings.items())},
        }
        for job in jobs
    ]
    if args.json:
        emit_json(records, out)
        return EXIT_OK
    for r in records:
        lines = [f"unbottled to {r['directory']}"]
        lines.append(f"  simulation:  {r['simulation']} ({r['replicates']} replicate(s))")
        lines.append(f"  josh:        {r['source_path'] or '-'}")
        lines.append(f"  config:      {r['config_path']}")
        lines += [f"  data {name}:  {path}" for name, path in r["file_mappings"].items()]
        run_sh = Path(r["directory"]) / "run.sh"
        if run_sh.is_file():
            lines.append(
                f"run it with:  cd {shlex.quote(r['directory'])} && ./run.sh /path/to/joshsim-fat.jar"
            )
        out.write("\n".join(lines) + "\n")
    return EXIT_OK
