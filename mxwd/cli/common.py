"""What every command shares: printing progress, naming written figures, one-line errors."""
from __future__ import annotations

import argparse


class JobFailed(Exception):
    """A data-parallel job failed: one line, exit status 1."""


class StdoutFailed(Exception):
    """Writing to stdout failed (the OSError is the cause)."""


def one_line(err: BaseException) -> str:
    """An error message on one line (MXNet's carry C++ stack traces on the following lines)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    if len(lines) > 1 and type(err).__name__ == "MXNetError":  # its last line is the message
        return next((ln for ln in reversed(lines) if ln.startswith("MXNetError:")), lines[-1])
    return " ".join(lines) if len(lines) < 4 else lines[0]


def figure_names(saved) -> str:
    """'runs.png and published.png/.svg': each figure once, with the formats it was saved in."""
    names = []
    for paths in saved:
        stem = paths[0].stem
        names.append(stem + "." + "/.".join(p.suffix[1:] for p in paths))
    count = f"{len(names)} figure{'s' if len(names) != 1 else ''}"
    return f"{count}: {', '.join(names)}"



def say(args: argparse.Namespace, text: str) -> None:
    """A progress line on stdout. Progress is a side channel: if stdout fails (a full disk, a
    closed pipe) the run goes on quietly, and the summary printed after the results are
    committed reports the failure, naming the folder it kept."""
    if args.quiet:
        return
    try:
        print(text, flush=True)
    except StdoutFailed:
        args.quiet = True
