"""`python -m mxwd`: the same command line as `mxwd`."""
from mxwd.cli import main

raise SystemExit(main())
