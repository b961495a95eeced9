# joshreg tasks. Run from the repository root, e.g. `.venv/bin/just test`.

# Extra recipe arguments reach the command as "$@", spaces intact.
set positional-arguments

# The virtual environment's interpreter; override with `just python=python3 test`.
python := ".venv/bin/python"
lint_paths := "src tests benchmarks events"

# List the recipes.
default:
    @{{ just_executable() }} --justfile {{ justfile() }} --list

# Run the test suite; extra arguments go to pytest (e.g. `just test -k labels`).
test *args:
    {{ python }} -m pytest -q -n auto "$@"

# The suite without process races, fault injection, Hypothesis suites, servers and builds (`-m "not slow"`).
test-fast *args:
    {{ python }} -m pytest -q -n auto -m "not slow" "$@"

# Run the demo sweep into demo-output/ (wiped first).
demo *args:
    {{ python }} -m joshreg.demo "$@"

# The demo sweep on object storage into demo-s3-output/: a SeaweedFS (dev extras) in a temp folder, workers sharing only the bucket.
demo-s3 *args:
    {{ python }} -m joshreg.testing.demo_s3 "$@"

# Benchmark against the design goals (`just bench --quick` for a smoke run); writes bench-output/
# (one JSON file a script, rows as in benchmarks/bench_row.schema.json) below the working directory.
# Core (event log, projector) first, then simulation results (CSV loads, cell_data, diagnostics),
# then point reads and reopening against upstream's way, then the live projection (joshreg watch
# latency, snapshots), then importing a joshpy registry, then statuses, attributes, designs and
# current results, then start-up (imports, the CLI, opening an empty registry). Every script takes
# --quick, --scale, --only NAME, --tmp DIR and --profile N. `just bench --scale` runs only the
# scale rows (10^7 events in bench-output/core-scale.json, with the 10^6 rows they are judged
# against; 50 million cell_data rows in results-scale.json); scripts without scale rows skip.
bench *args:
    {{ python }} "{{ justfile_directory() }}/benchmarks/bench_core.py" "$@"
    {{ python }} "{{ justfile_directory() }}/benchmarks/bench_results.py" "$@"
    {{ python }} "{{ justfile_directory() }}/benchmarks/bench_reads.py" "$@"
    {{ python }} "{{ justfile_directory() }}/benchmarks/bench_watch.py" "$@"
    {{ python }} "{{ justfile_directory() }}/benchmarks/bench_import.py" "$@"
    {{ python }} "{{ justfile_directory() }}/benchmarks/bench_curation.py" "$@"
    {{ python }} "{{ justfile_directory() }}/benchmarks/bench_startup.py" "$@"

# The event store on object storage (issue 15's speed goals) against a SeaweedFS (dev extras)
# started in a temp folder, beside the same workloads on a local disk; writes bench-output/s3.json.
# Separate from `bench`, which it would take past 10 minutes (about 3-4 minutes on its own).
bench-s3 *args:
    {{ python }} benchmarks/bench_s3.py "$@"

# Regenerate schemas/ (JSON Schema of every event type) from the msgspec types.
schemas:
    {{ python }} -m joshreg.log.schemas

# Check style: ruff lint and formatting.
lint:
    {{ python }} -m ruff check {{ lint_paths }}
    {{ python }} -m ruff format --check {{ lint_paths }}
