"""A rich progress display for a running study: trials done / total per model, ETA, the trial in flight."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from robustbench_vit.study.storage import FINISHED
from robustbench_vit.train.config import EpochRecord



class StudyProgress:
    """One bar per model plus a total; `enabled=False` makes every call a no-op."""

    def __init__(self, title: str, totals: dict[str, int], enabled: bool = True) -> None:
        """Prepare bars for `totals` ({model: planned trials})."""
        self.enabled = enabled
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled)
        self.tasks = {m: self.progress.add_task(f"  {m}", total=n, detail="") for m, n in totals.items()}
        self.total = self.progress.add_task(f"[bold]{title}", total=sum(totals.values()), detail="")

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
            detail = f"diverged {c['diverged']} failed {c['failed']} running {c['running']}"
            self.progress.update(self.tasks[m], completed=sum(c[s] for s in FINISHED), detail=detail)
        done = sum(c[s] for c in counts.values() for s in FINISHED)
        self.progress.update(self.total, completed=done)

    def epoch(self, model: str, record: EpochRecord) -> None:
        """Show the epoch just finished by the trial running in this process."""
        self.progress.update(self.tasks[model], detail=f"epoch {record.epoch + 1}: error {record.val_error:.1f}%")
