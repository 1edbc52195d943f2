"""Progress for long work: a rich bar on a terminal, periodic plain lines in a log file."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_INTERVAL_S = 30.0  # seconds between plain progress lines


class Ticker:
    """Plain progress lines for a log file: one when ``interval`` seconds have passed since the
    last, and a closing one once the work is done if any was printed before (quick work stays
    silent)."""

    def __init__(self, description: str, total: int, interval: float | None = None) -> None:
        self.description, self.total = description, total
        self.interval = PLAIN_INTERVAL_S if interval is None else interval
        self.start = self.last = time.monotonic()
        self.printed = False

    def update(self, done: int, detail: str = "") -> None:
        now = time.monotonic()
        finished = done >= self.total
        if now - self.last >= self.interval or (finished and self.printed):
            suffix = f", {detail}" if detail else ""
            print(
                f"{self.description}: {done}/{self.total} ({now - self.start:.0f} s{suffix})",
                flush=True,
            )
            self.last, self.printed = now, True


@contextlib.contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Show progress through ``total`` units of work; yields ``advance(n)``."""
    if not Console().is_terminal:
        ticker, done = Ticker(description, total), 0

        def advance(n: int = 1) -> None:
            nonlocal done
            done += n
            ticker.update(done)

        yield advance
        return
    columns = (
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance_bar(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance_bar
