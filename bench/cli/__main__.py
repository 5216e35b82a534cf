"""``python -m bench.cli``: the isda-bench command line."""

from bench.cli.main import main

raise SystemExit(main())
