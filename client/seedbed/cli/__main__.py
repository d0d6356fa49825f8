"""`python -m seedbed.cli` runs the `seedbed` command."""

from seedbed.cli import main

raise SystemExit(main())
