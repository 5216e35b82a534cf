"""``python -m bench.cli``: the isda-bench command line."""

from bench.cli import main

raise SystemExit(main())
