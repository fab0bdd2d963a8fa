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
from robustbench_vit.train.dist import all_sum, barrier, broadcast_object, local_device, sync_buffers, world
from robustbench_vit.train.optim import autocast, build_mixup, build_optimizer, build_scheduler, resolve_device

NAN_CHECK_EVERY = 50  # steps between mid-epoch non-finite checks (each is one device sync)


def run_trial(config: TrialConfig, trial_dir: str | Path | None = None,
              progress: Callable[[EpochRecord], None] | None = None) -> TrialResult:
    """Train one trial (resuming from `trial_dir/last.pt`); bad config values raise UserError before training.

    Divergence is a result (status "diverged", error 100); any other exception while training is a result
    with status "failed" and the message. `progress` is called after each epoch's checkpoint is written.
    Inside an initialised torch.distributed group of several ranks it trains with DDP (CUDA: the LOCAL_RANK
    GPU): `batch_size` stays the global batch, rank 0 writes the checkpoint, every rank returns rank 0's result.
    """
    t0 = time.perf_counter()
    check_dataset(config.dataset)
    device = resolve_device(config.device)
    ranks = world()[1]
    if ranks > 1:
        check_ddp_batch(config, ranks)
        if device.type == "cuda":
            device = local_device()
            torch.cuda.set_device(device)
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
    meta = {"params": None, "gmacs": None, "device": str(device) if ranks == 1 else f"{device.type} x{ranks} (DDP)",
            "num_classes": data.num_classes}
    history: list[EpochRecord] = []  # filled by train(), kept when it fails
    try:
        cx = model_complexity(config.model, data.num_classes)  # a user stem may fail here: a failed trial
        meta.update(params=cx["params"], gmacs=cx["gmacs"])
        return broadcast_object(train(config, data, device, cx["depth"], ckpt, state, progress, t0, meta, history))
    except Exception as e:  # noqa: BLE001 — a broken trial is a result, not a crash of the study
        seconds = (state or {}).get("seconds", 0.0) + time.perf_counter() - t0
        return TrialResult(status="failed", final_error=100.0, min_error=min([h.val_error for h in history] + [100.0]),
                           epochs_run=len(history), seconds=seconds, history=history,
                           message=f"{type(e).__name__}: {e}", **meta)


def train(config: TrialConfig, data: DataBundle, device: torch.device, depth: int, ckpt: Path | None,
          state: dict | None, progress, t0: float, meta: dict, history: list[EpochRecord]) -> TrialResult:
    """The loop: epochs of (shuffle, forward, backward, step, schedule, EMA), then evaluate and checkpoint."""
    seed_all(config.seed)
    rank, ranks = world()
    model = build_model(config.model, data.num_classes, depth=depth).to(device)
    train_loader = data.train_loader(config.batch_size, config.seed, config.augment, rank=rank, world=ranks)
    val_loader = data.val_loader(256, rank=rank, world=ranks)
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
    fwd = model if ranks == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device] if device.type == "cuda" else None)
    fwd = torch.compile(fwd) if config.compile and device.type == "cuda" else fwd
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
            if (i + 1) % NAN_CHECK_EVERY == 0 and not torch.isfinite(all_sum(loss_sum)):  # all ranks stop alike
                break
        train_loss = all_sum(loss_sum).item() / (i + 1) / ranks
        # epoch 0 is held to the loss at init, ln(classes) (the zero-initialised head predicts uniformly)
        ref, ref_name = (first_loss, "first epoch") if first_loss is not None else (init_loss, "at init")
        first_loss = train_loss if first_loss is None else first_loss
        if not math.isfinite(train_loss) or train_loss > config.diverge_factor * ref:
            status = "diverged"
            message = f"epoch {epoch}: train loss {train_loss:.4g} ({ref_name} {ref:.4g}, factor {config.diverge_factor})"
        sync_buffers(model, ema.module if ema else None)  # rank 0's BatchNorm statistics everywhere
        eval_model = ema.module if ema else fwd if ranks == 1 else model  # DDP's forward would sync buffers
        val_error = 100.0 if status == "diverged" else evaluate(eval_model, val_loader, device, config.amp)
        history.append(EpochRecord(epoch=epoch, train_loss=train_loss, val_error=val_error, lr=lr,
                                   seconds=time.perf_counter() - t))
        done = status == "diverged" or epoch == config.epochs - 1
        result = TrialResult(status=status, final_error=100.0 if status == "diverged" else val_error,
                             min_error=min(h.val_error for h in history), epochs_run=len(history),
                             seconds=before + time.perf_counter() - t0, history=history, message=message, **meta)
        if ckpt is not None and rank == 0:
            save_checkpoint(ckpt, {
                "config": config_key(config), "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "ema": ema.state_dict() if ema else None, "rng": rng_state(),
                "history": [h.model_dump() for h in history], "first_loss": first_loss, "seconds": result.seconds,
                "result": result.model_dump() if done else None})
        if ckpt is not None:
            barrier()  # the other ranks wait for rank 0's checkpoint
        if progress is not None:
            progress(history[-1])
        if done:
            return result
    raise AssertionError("unreachable: the last epoch returns")  # pragma: no cover


def check_ddp_batch(config: TrialConfig, ranks: int) -> None:
    """UserError unless the global batch splits evenly over the ranks (and stays even per rank with mixup)."""
    per_rank, mixing = config.batch_size // ranks, config.mixup > 0 or config.cutmix > 0
    if config.batch_size % ranks or (mixing and per_rank % 2):
        raise UserError(f"batch_size {config.batch_size} must split into equal{' even' if mixing else ''} "
                        f"per-rank batches over {ranks} DDP ranks; allowed: multiples of "
                        f"{ranks * (2 if mixing else 1)}")


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
    if world()[1] > 1:  # each rank saw its share of the val set
        wrong, n = all_sum(torch.stack([wrong, torch.tensor(n, device=device)])).tolist()
    return 100.0 * int(wrong) / n
