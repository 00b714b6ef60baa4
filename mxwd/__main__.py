"""`python -m mxwd`: the command line (see mxwd.cli)."""
from mxwd.cli import entry

entry()
