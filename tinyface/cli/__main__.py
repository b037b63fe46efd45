"""`python -m tinyface.cli ...` is `tinyface ...`."""

from tinyface.cli.main import main

raise SystemExit(main())
