"""One trial: build, train with per-epoch checkpoints, detect divergence, return a TrialResult."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from timm.loss import SoftTargetCrossEntropy
from timm.utils import ModelEmaV3

from robustbench_vit.data import DataBundle, check_dataset, epoch_seed, load_dataset
from robustbench_vit.errors import UserError
from robustbench_vit.models import build_model, model_complexity, size_info
from robustbench_vit.train.checkpoint import (config_key, load_checkpoint, rng_state, save_checkpoint, seed_all,
                                              set_rng_state)
from robustbench_vit.train.config import EpochRecord, TrialConfig, TrialResult
from robustbench_vit.train.optim import autocast, build_mixup, build_optimizer, build_scheduler, resolve_device

NAN_CHECK_EVERY = 50  # steps between mid-epoch non-finite checks (each is one device sync)


def run_trial(config: TrialConfig, trial_dir: str | Path | None = None,
              progress: Callable[[EpochRecord], None] | None = None) -> TrialResult:
    """Train one trial (resuming from `trial_dir/last.pt`); bad config values raise UserError before training.

    Divergence is a result (status "diverged", error 100); any other exception while training is a result
    with status "failed" and the message. `progress` is called after each epoch's checkpoint is written.
    """
    t0 = time.perf_counter()
    check_dataset(config.dataset)
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    ckpt = Path(trial_dir) / "last.pt" if trial_dir is not None else None
    state = load_checkpoint(ckpt, config)
    if state is not None and state.get("result") is not None:
        return TrialResult.model_validate(state["result"])
    info = size_info(config.model.size)
    data = load_dataset(config.dataset, config.data_root, device=device, img_size=info["img_size"])
    if (data.in_chans, data.img_size) != (info["in_chans"], info["img_size"]):
        raise UserError(f"model {config.model.name!r} takes {info['in_chans']}×{info['img_size']}px images but dataset "
                        f"{config.dataset!r} has {data.in_chans}×{data.img_size}px; pick a model of size matching it")
    build_mixup(config, data.num_classes)  # raises UserError for an odd batch with mixup
    cx = model_complexity(config.model, data.num_classes)
    meta = {"params": cx["params"], "gmacs": cx["gmacs"], "device": str(device)}
    history: list[EpochRecord] = []  # filled by train(), kept when it fails
    try:
        return train(config, data, device, cx["depth"], ckpt, state, progress, t0, meta, history)
    except Exception as e:  # noqa: BLE001 — a broken trial is a result, not a crash of the study
        seconds = (state or {}).get("seconds", 0.0) + time.perf_counter() - t0
        return TrialResult(status="failed", final_error=100.0, min_error=min([h.val_error for h in history] + [100.0]),
                           epochs_run=len(history), seconds=seconds, history=history,
                           message=f"{type(e).__name__}: {e}", **meta)


def train(config: TrialConfig, data: DataBundle, device: torch.device, depth: int, ckpt: Path | None,
          state: dict | None, progress, t0: float, meta: dict, history: list[EpochRecord]) -> TrialResult:
    """The loop: epochs of (shuffle, forward, backward, step, schedule, EMA), then evaluate and checkpoint."""
    seed_all(config.seed)
    model = build_model(config.model, data.num_classes, depth=depth).to(device)
    train_loader, val_loader = data.train_loader(config.batch_size, config.seed, config.augment), data.val_loader(256)
    steps = len(train_loader)
    opt, mixup = build_optimizer(model, config), build_mixup(config, data.num_classes)
    sched = build_scheduler(opt, config, steps)
    ema = ModelEmaV3(model, decay=config.ema_decay) if config.ema_decay else None
    loss_fn = SoftTargetCrossEntropy() if mixup else torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    first_loss, before, init_loss = None, 0.0, math.log(data.num_classes)
    if state is not None:  # resume: everything the next epoch depends on
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if ema:
            ema.load_state_dict(state["ema"])
        set_rng_state(state["rng"])
        history.extend(EpochRecord(**h) for h in state["history"])
        first_loss, before = state["first_loss"], state["seconds"]
    fwd = torch.compile(model) if config.compile and device.type == "cuda" else model
    status, message = "complete", None
    for epoch in range(len(history), config.epochs):
        t, lr = time.perf_counter(), opt.param_groups[0]["lr"]
        seed_all(epoch_seed(config.seed, epoch))  # mixup / folder transforms draw from the global RNGs
        train_loader.set_epoch(epoch)
        model.train()
        loss_sum = torch.zeros((), device=device)
        for i, (x, y) in enumerate(train_loader):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if mixup:
                x, y = mixup(x, y)
            with autocast(device, config.amp):
                loss = loss_fn(fwd(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            sched.step_update(epoch * steps + i + 1)
            if ema:
                ema.update(model, step=epoch * steps + i + 1)
            loss_sum += loss.detach()
            if (i + 1) % NAN_CHECK_EVERY == 0 and not torch.isfinite(loss_sum):
                break
        train_loss = loss_sum.item() / (i + 1)
        # epoch 0 is held to the loss at init, ln(classes) (the zero-initialised head predicts uniformly)
        ref, ref_name = (first_loss, "first epoch") if first_loss is not None else (init_loss, "at init")
        first_loss = train_loss if first_loss is None else first_loss
        if not math.isfinite(train_loss) or train_loss > config.diverge_factor * ref:
            status = "diverged"
            message = f"epoch {epoch}: train loss {train_loss:.4g} ({ref_name} {ref:.4g}, factor {config.diverge_factor})"
        eval_model = ema.module if ema else fwd
        val_error = 100.0 if status == "diverged" else evaluate(eval_model, val_loader, device, config.amp)
        history.append(EpochRecord(epoch=epoch, train_loss=train_loss, val_error=val_error, lr=lr,
                                   seconds=time.perf_counter() - t))
        done = status == "diverged" or epoch == config.epochs - 1
        result = TrialResult(status=status, final_error=100.0 if status == "diverged" else val_error,
                             min_error=min(h.val_error for h in history), epochs_run=len(history),
                             seconds=before + time.perf_counter() - t0, history=history, message=message, **meta)
        if ckpt is not None:
            save_checkpoint(ckpt, {
                "config": config_key(config), "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "ema": ema.state_dict() if ema else None, "rng": rng_state(),
                "history": [h.model_dump() for h in history], "first_loss": first_loss, "seconds": result.seconds,
                "result": result.model_dump() if done else None})
        if progress is not None:
            progress(history[-1])
        if done:
            return result
    raise AssertionError("unreachable: the last epoch returns")  # pragma: no cover


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, device: torch.device, amp: bool) -> float:
    """Top-1 error (%) over the loader, with one device sync at the end."""
    model.eval()
    wrong, n = torch.zeros((), dtype=torch.long, device=device), 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, amp):
            wrong += (model(x).argmax(1) != y).sum()
        n += len(y)
    return 100.0 * wrong.item() / n
