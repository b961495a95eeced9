"""``python -m joshreg`` runs the command line."""

from joshreg.cli.app import main

raise SystemExit(main())
