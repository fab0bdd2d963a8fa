"""`robustbench-vit train`: options → TrialConfig (one-line errors), one trial with progress, its summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from robustbench_vit.data import check_dataset
from robustbench_vit.errors import UserError
from robustbench_vit.models import ModelSpec
from robustbench_vit.train.config import EpochRecord, TrialConfig, TrialResult
from robustbench_vit.train.loop import run_trial


def make_config(model: str, size: str = "micro", **options: Any) -> TrialConfig:
    """A TrialConfig from a built-in model name (a timm:NAME model at `size`) and plain options; bad values raise a
    one-line UserError."""
    spec = ModelSpec.from_name(model, size=size)
    check_dataset(options.get("dataset", "digits"))
    try:
        return TrialConfig(model=spec, **{k: v for k, v in options.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise UserError(f"{field} {err.get('input')!r} is invalid: {err['msg'].lower()}") from None


def train_console(config: TrialConfig, trial_dir: str | Path | None = None, as_json: bool = False) -> TrialResult:
    """Run one trial with a rich progress bar and a line per epoch; `as_json` keeps stdout for one JSON object."""
    console = Console(stderr=as_json)
    columns = (TextColumn(f"{config.model.name} on {config.dataset}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("epochs"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("train", total=config.epochs)

        def on_epoch(r: EpochRecord) -> None:
            """Print the epoch's line and move the bar."""
            bar.console.print(f"epoch {r.epoch + 1:>3}/{config.epochs}  loss {r.train_loss:.4f}  "
                              f"val error {r.val_error:6.2f}%  lr {r.lr:.2e}  {r.seconds:.1f}s")
            bar.update(task, completed=r.epoch + 1)

        result = run_trial(config, trial_dir=trial_dir, progress=on_epoch)
    if as_json:
        print(json.dumps({"final_error": result.final_error, "min_error": result.min_error, "status": result.status,
                          "epochs": result.epochs_run, "seconds": round(result.seconds, 3),
                          "resumed_epochs": result.resumed_epochs,
                          "first_step_seconds": result.first_step_seconds, "step_seconds": result.step_seconds,
                          "device": result.device}))
    else:
        note = f" ({result.message})" if result.message else ""
        console.print(f"{config.model.name}: {result.status}, final error {result.final_error:.2f}% "
                      f"(min {result.min_error:.2f}%) after {result.epochs_run} epochs in {result.seconds:.1f}s{note}")
    if result.status == "failed":
        print(f"robustbench-vit: trial failed: {result.message}", file=sys.stderr)
    return result


def main(args: argparse.Namespace) -> int:
    """`train`: one trial with progress; exit 1 when the trial failed (diverged is a result: exit 0)."""
    config = make_config(args.model, args.size, dataset=args.dataset, data_root=args.data_root,
                         optimizer=args.optimizer, lr=args.lr, weight_decay=args.wd, epochs=args.epochs,
                         batch_size=args.batch_size, augment=args.augment, seed=args.seed, device=args.device,
                         threads=args.threads, train_subset=getattr(args, "train_subset", None))
    return 1 if train_console(config, args.trial_dir, args.json).status == "failed" else 0
