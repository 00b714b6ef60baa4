"""The numbers the book printed (shared/reference/book-versions.md), for checking a reproduction."""
from __future__ import annotations

from typing import Dict, Tuple

# gluonbook-2018 (our source), printed by fit_and_plot: w[:10] and b for lambd = 0 and 5.
GLUONBOOK_2018: Dict[float, Dict[str, object]] = {
    0.0: {
        "w[:10]": (0.30343655, -0.08110731, 0.64756584, -1.51627898, 0.16536537,
                   0.42101485, 0.41159022, 0.8322348, -0.66477555, 3.56285167),
        "b": 0.12521751,
    },
    5.0: {
        "w[:10]": (0.01602661, -0.00279179, 0.03075662, -0.07356022, 0.01006496,
                   0.02420521, 0.02145572, 0.04235912, -0.03388886, 0.17112994),
        "b": 0.08771407,
    },
}

# d2lzh-2019: the printed "L2 norm of w" (the Euclidean norm ||w||), by path and lambd.
D2LZH_2019: Dict[Tuple[str, float], float] = {
    ("scratch", 0.0): 11.611941,
    ("scratch", 3.0): 0.04225087,
    ("gluon", 0.0): 13.311797,
    ("gluon", 3.0): 0.032601923,
}
