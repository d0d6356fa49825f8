"""`python -m seedbed.cli` runs the `seedbed` command."""

from seedbed.cli._main import main

raise SystemExit(main())
