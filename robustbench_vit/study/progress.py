"""Progress of a running study: trials done / total per model, elapsed time, ETA, the trial in flight.

On a terminal: rich bars whose times come before the free text, so a narrow terminal cuts the text, not the times.
Elsewhere (a log file, a pipe): one plain line each time a trial finishes, times first, never cut.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column

from robustbench_vit.store import FINISHED
from robustbench_vit.train.config import EpochRecord


def clock(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    return str(timedelta(seconds=int(seconds)))


class StudyProgress:
    """One bar per model plus a total (a terminal) or a line per finished trial (else); `enabled=False` makes
    every call a no-op."""

    def __init__(self, title: str, totals: dict[str, int], enabled: bool = True) -> None:
        """Prepare bars for `totals` ({model: planned trials})."""
        console = Console(stderr=True)
        self.title, self.totals, self.enabled = title, totals, enabled
        self.lines = enabled and not console.is_terminal  # plain lines for logs
        kept = Column(no_wrap=True, min_width=7)  # the counts and times: never cut
        self.progress = Progress(TextColumn("{task.description}",
                                            table_column=Column(no_wrap=True, overflow="ellipsis", max_width=34)),
                                 BarColumn(bar_width=12), MofNCompleteColumn(table_column=kept),
                                 TimeElapsedColumn(table_column=kept),
                                 TextColumn("ETA", table_column=Column(no_wrap=True)),
                                 TimeRemainingColumn(table_column=kept),
                                 TextColumn("{task.fields[detail]}",
                                            table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
                                 console=console, disable=not enabled or self.lines, expand=True)
        self.tasks = {m: self.progress.add_task(f"  {m}", total=n, detail="") for m, n in totals.items()}
        self.total = self.progress.add_task(f"[bold]{title}", total=sum(totals.values()), detail="")
        self.start, self.first, self.said = time.monotonic(), None, None

    def __enter__(self) -> "StudyProgress":
        """Start drawing."""
        self.progress.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        """Stop drawing (the last state stays on screen)."""
        self.progress.stop()

    def update(self, counts: dict[str, dict[str, int]]) -> None:
        """Show {model: {status: count}}."""
        for m, c in counts.items():
            stopped = f" stopped {c['stopped']}" if c.get("stopped") else ""  # hopeless, stopped early
            detail = f"diverged {c['diverged']}{stopped} failed {c['failed']} running {c['running']}"
            self.progress.update(self.tasks[m], completed=sum(c[s] for s in FINISHED), detail=detail)
        done = sum(c[s] for c in counts.values() for s in FINISHED)
        self.progress.update(self.total, completed=done)
        if self.lines:
            self._line(counts, done)

    def _line(self, counts: dict[str, dict[str, int]], done: int) -> None:
        """One log line when the finished count changed: elapsed, ETA (from the trials finished here), counts."""
        if done == self.said:
            return
        now, total = time.monotonic(), sum(self.totals.values())
        if self.first is None:
            self.first = done  # finished before this run: not part of its rate
        ran = done - self.first
        eta = clock((now - self.start) / ran * (total - done)) if ran and done < total else "-"
        failed = sum(c["failed"] for c in counts.values())
        print(f"{clock(now - self.start)} ETA {eta}  {self.title}: {done}/{total} trials finished"
              f"{f', {failed} failed' if failed else ''}", file=sys.stderr, flush=True)
        self.said = done

    def epoch(self, model: str, record: EpochRecord) -> None:
        """Show the epoch just finished by the trial running in this process."""
        self.progress.update(self.tasks[model], detail=f"epoch {record.epoch + 1}: error {record.val_error:.1f}%")
