"""What a run may cost: sizes refused before allocating, and a time budget checked early.

Sizes. MXNet 1.9.1 cannot allocate a tensor of 2^31 elements or more (it fails with a
36-line traceback), and a run that fits that limit can still exceed the machine's
memory. `check_size` estimates both before anything is allocated and raises a
ValueError naming the parameters to reduce.

Time. `budget(seconds, progress)` sets, for the duration, how long a run may take: a
training loop times its first unit of work (an epoch), multiplies out, and raises a
ValueError at once if the estimate is over the budget, or shows a progress bar with the
estimate if the run will take a while. The command line sets a one-hour budget
(`--yes` lifts it); the Python API has none unless a caller sets one.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator, Optional

from mxwd.config import Config

MAX_ELEMENTS = 2**31 - 1  # MXNet 1.9.1's largest tensor (its index type is int32)
CLI_BUDGET = 3600.0  # seconds: the command line asks for --yes beyond this
SHOW_PROGRESS_AFTER = 5.0  # seconds: runs estimated longer show a progress bar

_budget: Optional[float] = None
_progress = False


@contextlib.contextmanager
def budget(seconds: Optional[float], progress: bool) -> Iterator[None]:
    """Within the block, runs estimated over `seconds` are refused; long ones show progress."""
    global _budget, _progress
    saved = _budget, _progress
    _budget, _progress = seconds, progress
    try:
        yield
    finally:
        _budget, _progress = saved


def available_bytes() -> Optional[int]:
    """The machine's available memory (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _human_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TB"  # pragma: no cover


def human_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    if seconds < 2 * 365 * 86400:
        return f"{seconds / 86400:.0f} days"
    return f"{seconds / (365 * 86400):.3g} years"


def check_size(config: Config, seeds: int = 1, lambdas: int = 1) -> None:
    """Refuse, before allocating, a run whose tensors MXNet cannot hold or the machine cannot fit.

    One seed's data is (n_train + n_test) x num_inputs; a sweep stacks the data of a chunk
    of seeds and keeps every model's weights and per-epoch losses.
    """
    rows = config.n_train + config.n_test
    elements = rows * config.num_inputs
    if elements > MAX_ELEMENTS:
        raise ValueError(
            f"n_train + n_test = {rows} rows x num_inputs = {config.num_inputs} = {elements:,} values in one "
            f"tensor; MXNet cannot allocate more than 2^31 - 1 = {MAX_ELEMENTS:,}: reduce n_train, n_test "
            "or num_inputs")
    itemsize = 4 if config.dtype == "float32" else 8
    # the data drawn in float32, its cast and its gathered copy; the batch orders;
    # per model the weights and the per-epoch losses
    per_seed = elements * (4 + 2 * itemsize) + config.num_epochs * config.n_train * 8
    per_model = config.num_inputs * itemsize + config.num_epochs * 2 * 8
    need = seeds * per_seed + seeds * lambdas * per_model
    free = available_bytes()
    if free is not None and need > 0.8 * free:
        raise ValueError(
            f"this run needs about {_human_bytes(need)} of memory (n_train + n_test = {rows}, num_inputs = "
            f"{config.num_inputs}, num_epochs = {config.num_epochs}, {seeds} seed(s) x {lambdas} lambd(s)); "
            f"the machine has {_human_bytes(free)} available: reduce them")


class OverBudget(ValueError):
    """A run whose estimated time is over the budget (raised after its first epoch)."""


class Clock:
    """Times a run's units of work (epochs); after the first, checks the budget and may show progress."""

    def __init__(self, units: int, what: str, show: bool = False):
        self.units, self.what, self.done, self.show = units, what, 0, show
        self.start = time.perf_counter()
        self.bar = None

    def tick(self) -> None:
        self.done += 1
        if self.done == 1 and self.units > 1:
            estimate = (time.perf_counter() - self.start) * self.units
            if _budget is not None and estimate > _budget:
                raise OverBudget(
                    f"{self.what} would take about {human_seconds(estimate)} ({self.units:,} epochs, estimated "
                    f"from the first); the command line runs at most {human_seconds(_budget)} unless you pass "
                    "--yes: reduce num_epochs (or seeds), or pass --yes")
            if (_progress or self.show) and estimate > SHOW_PROGRESS_AFTER:
                from tqdm import tqdm

                self.bar = tqdm(total=self.units, initial=1, desc=self.what, unit="epoch", leave=False)
        elif self.bar is not None:
            self.bar.update()
        if self.bar is not None and self.done >= self.units:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
