"""One trial: build, train with per-epoch checkpoints, detect divergence, return a TrialResult.

Read `run_trial` then `train` top to bottom: set up, restore, and per epoch train / check for divergence /
evaluate / stop a hopeless trial / checkpoint. Every epoch starts from seeds derived from (seed, epoch) — the global
RNGs and the data order alike — so a trial resumed from its checkpoint repeats an uninterrupted run bit for bit on CPU.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from timm.loss import SoftTargetCrossEntropy
from timm.utils import ModelEmaV3

from robustbench_vit.data import DataBundle, check_dataset, epoch_seed, load_dataset
from robustbench_vit.errors import UserError
from robustbench_vit.models import build_model, model_complexity, size_info
from robustbench_vit.train.checkpoint import config_key, load_checkpoint, runtime_key, save_checkpoint, seed_all
from robustbench_vit.train.config import EpochRecord, TrialConfig, TrialResult
from robustbench_vit.train.dist import all_sum, barrier, broadcast_object, local_device, sync_buffers, world
from robustbench_vit.train.optim import autocast, build_mixup, build_optimizer, build_scheduler, resolve_device

NAN_CHECK_EVERY = 50  # steps between mid-epoch non-finite checks (each is one device sync)
# The hopeless-trial rule (`hopeless`), chosen by replaying every built-in study's stored learning curves
# (benchmarks/replay_early_stop.py, which has the numbers): a trial whose val error stayed within STOP_MARGIN points
# of chance at every epoch of its first max(STOP_MIN_EPOCHS, STOP_FRACTION × epochs) is stopped there. Late on
# purpose: on the 10-epoch digits studies, trials at chance for the first 70% of training still learned (to 76%).
STOP_MARGIN = 2.0
STOP_FRACTION = 0.8
STOP_MIN_EPOCHS = 2
# Measured step time (StepClock): each epoch's first WARM_STEPS steps are not timed (allocator, autotuning, compiling,
# the loader's shuffle), and at most MAX_TIMED_STEPS steps of a run are: their median is the trial's step time.
WARM_STEPS = 3
MAX_TIMED_STEPS = 1000


@dataclass
class TrainState:
    """What a trial carries from epoch to epoch besides the weights (and what its checkpoint stores of it)."""

    started: float  # perf_counter() when this run of the trial began
    meta: dict  # params, gmacs, device, num_classes: copied into every result
    history: list[EpochRecord] = field(default_factory=list)
    first_loss: float | None = None  # epoch 0's train loss: later epochs are held to it
    seconds_before: float = 0.0  # training time of the trial's earlier runs (before a resume)
    resumed_epochs: int = 0  # epochs the checkpoint held when this run began
    first_step: float | None = None  # seconds from this run's start to its first optimizer step done
    step_times: list[float] = field(default_factory=list)  # seconds of this run's timed steps (StepClock)
    status: str = "complete"
    message: str | None = None  # why it diverged or was stopped

    @classmethod
    def resumed(cls, checkpoint: dict | None, started: float, meta: dict) -> TrainState:
        """The state at the start of a run: fresh, or where the checkpoint left off."""
        if checkpoint is None:
            return cls(started, meta)
        history = [EpochRecord(**h) for h in checkpoint["history"]]
        return cls(started, meta, history, checkpoint["first_loss"], checkpoint["seconds"], len(history))

    def seconds(self) -> float:
        """Training time so far, over every run of the trial."""
        return self.seconds_before + time.perf_counter() - self.started

    def result(self, status: str | None = None, message: str | None = None) -> TrialResult:
        """The trial's result as of now (diverged, stopped and failed trials count at error 100)."""
        status, message = status or self.status, message or self.message
        errors = [h.val_error for h in self.history]
        final = errors[-1] if status == "complete" and errors else 100.0
        return TrialResult(status=status, final_error=final, min_error=min(errors + [100.0]),
                           epochs_run=len(self.history), seconds=self.seconds(), history=self.history,
                           message=message, resumed_epochs=self.resumed_epochs, first_step_seconds=self.first_step,
                           step_seconds=statistics.median(self.step_times) if self.step_times else None, **self.meta)

    @property
    def diverged(self) -> bool:
        """The trial diverged: nothing more to train."""
        return self.status == "diverged"


@dataclass
class Parts:
    """What trains: the model (and its DDP / compiled forward), optimizer, schedule, EMA, mixup, loss, loaders."""

    model: torch.nn.Module
    forward: torch.nn.Module  # the model, wrapped by DDP and torch.compile where they apply
    opt: torch.optim.Optimizer
    sched: object  # timm scheduler: step_update(step)
    ema: ModelEmaV3 | None
    mixup: object | None
    loss_fn: torch.nn.Module
    train_loader: object
    val_loader: object

    @property
    def steps(self) -> int:
        """Optimizer steps per epoch."""
        return len(self.train_loader)


def run_trial(config: TrialConfig, trial_dir: str | Path | None = None,
              progress: Callable[[EpochRecord], None] | None = None) -> TrialResult:
    """Train one trial (resuming from `trial_dir/last.pt`); bad config values raise UserError before training.

    Divergence is a result (status "diverged", error 100), and so is a hopeless trial stopped early (status
    "stopped", error 100; `hopeless`, unless `stop_hopeless` is off); any other exception while training is a result
    with status "failed" and the message. `progress` is called after each epoch's checkpoint is written.
    Inside an initialised torch.distributed group of several ranks it trains with DDP (CUDA: the LOCAL_RANK
    GPU): `batch_size` stays the global batch, rank 0 writes the checkpoint, every rank returns rank 0's result.
    """
    started = time.perf_counter()
    check_dataset(config.dataset)
    device = trial_device(config)
    ckpt = Path(trial_dir) / "last.pt" if trial_dir is not None else None
    checkpoint = load_checkpoint(ckpt, config, runtime_key(config, device))
    if checkpoint is not None and checkpoint.get("result") is not None:  # finished before: its result
        return TrialResult.model_validate(checkpoint["result"])
    info = size_info(config.model.size)
    data = load_dataset(config.dataset, config.data_root, device=device, img_size=info.img_size,
                        train_subset=config.train_subset)
    if (data.in_chans, data.img_size) != (info.in_chans, info.img_size):
        raise UserError(f"model {config.model.name!r} takes {info.in_chans}×{info.img_size}px images but dataset "
                        f"{config.dataset!r} has {data.in_chans}×{data.img_size}px; pick a model of size matching it")
    build_mixup(config, data.num_classes)  # raises UserError for an odd batch with mixup
    ranks = world()[1]
    meta = {"params": None, "gmacs": None, "device": str(device) if ranks == 1 else f"{device.type} x{ranks} (DDP)",
            "num_classes": data.num_classes}
    state = TrainState.resumed(checkpoint, started, meta)
    try:
        cx = model_complexity(config.model, data.num_classes)  # a user stem may fail here: a failed trial
        meta.update(params=cx.params, gmacs=cx.gmacs)
        return broadcast_object(train(config, data, device, depth=cx.depth, ckpt=ckpt, checkpoint=checkpoint,
                                      state=state, progress=progress))
    except Exception as e:  # noqa: BLE001 — a broken trial is a result, not a crash of the study
        return state.result("failed", f"{type(e).__name__}: {e}")


def trial_device(config: TrialConfig) -> torch.device:
    """The device to train on (DDP on CUDA: this rank's GPU), with the batch checked and CPU threads pinned."""
    device = resolve_device(config.device)
    ranks = world()[1]
    if ranks > 1:
        check_ddp_batch(config, ranks)
        if device.type == "cuda":
            device = local_device()
            torch.cuda.set_device(device)
    if config.threads:
        torch.set_num_threads(config.threads)
    return device


def train(config: TrialConfig, data: DataBundle, device: torch.device, *, depth: int, ckpt: Path | None,
          checkpoint: dict | None, state: TrainState, progress: Callable[[EpochRecord], None] | None) -> TrialResult:
    """The loop: set up, restore, then per epoch train, check for divergence, evaluate, stop a hopeless trial and
    checkpoint."""
    # Set up: the model (from its own init seed) and everything that trains it (data order from the setting's seed).
    seed_all(config.seed if config.init_seed is None else config.init_seed)
    parts = build_parts(config, data, device, depth)
    # Restore: weights, optimizer, schedule and EMA as the checkpoint left them (history etc. are in `state`).
    if checkpoint is not None:
        restore(parts, checkpoint)
    for epoch in range(len(state.history), config.epochs):
        t, lr = time.perf_counter(), parts.opt.param_groups[0]["lr"]
        # Train one epoch from seeds of its own: the same draws whether or not the trial was resumed.
        seed_all(epoch_seed(config.seed, epoch))  # mixup / folder transforms draw from the global RNGs
        parts.train_loader.set_epoch(epoch)
        train_loss = train_epoch(parts, config, epoch, device, state=state)
        # Divergence: a non-finite loss, or one that grew beyond diverge_factor of where it started.
        check_divergence(state, config, epoch, train_loss, init_loss=math.log(data.num_classes))
        # Evaluate (EMA weights when there are; a diverged model counts at 100% error).
        sync_buffers(parts.model, parts.ema.module if parts.ema else None)  # rank 0's BatchNorm statistics
        val_error = 100.0 if state.diverged else evaluate(eval_model(parts), parts.val_loader, device, config.amp)
        state.history.append(EpochRecord(epoch=epoch, train_loss=train_loss, val_error=val_error, lr=lr,
                                         seconds=time.perf_counter() - t))
        # A hopeless trial (at chance at every epoch so far) stops here: it did not train.
        if config.stop_hopeless and not state.diverged:
            check_hopeless(state, config, data.num_classes)
        # Checkpoint (rank 0 writes, the others wait), then report the epoch.
        done = state.status != "complete" or epoch == config.epochs - 1
        result = state.result()
        write_checkpoint(ckpt, config, parts, state, result=result if done else None,
                         runtime=runtime_key(config, device))
        if progress is not None:
            progress(state.history[-1])
        if done:
            return result
    raise AssertionError("unreachable: the last epoch returns")  # pragma: no cover


def build_parts(config: TrialConfig, data: DataBundle, device: torch.device, depth: int) -> Parts:
    """Model, optimizer, schedule, EMA, mixup, loss and loaders, as the config says."""
    rank, ranks = world()
    model = build_model(config.model, data.num_classes, depth=depth).to(device)
    train_loader = data.train_loader(config.batch_size, config.seed, config.augment, rank=rank, world=ranks)
    opt, mixup = build_optimizer(model, config), build_mixup(config, data.num_classes)
    forward = model if ranks == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device] if device.type == "cuda" else None)
    forward = torch.compile(forward) if config.compile and device.type == "cuda" else forward
    return Parts(model=model, forward=forward, opt=opt, sched=build_scheduler(opt, config, len(train_loader)),
                 ema=ModelEmaV3(model, decay=config.ema_decay) if config.ema_decay else None, mixup=mixup,
                 loss_fn=SoftTargetCrossEntropy() if mixup else
                 torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
                 train_loader=train_loader, val_loader=data.val_loader(256, rank=rank, world=ranks))


def restore(parts: Parts, checkpoint: dict) -> None:
    """Load what the next epoch depends on from a checkpoint: weights, optimizer, schedule, EMA."""
    parts.model.load_state_dict(checkpoint["model"])
    parts.opt.load_state_dict(checkpoint["optimizer"])
    parts.sched.load_state_dict(checkpoint["scheduler"])
    if parts.ema:
        parts.ema.load_state_dict(checkpoint["ema"])


class FiniteWatch:
    """Whether the running loss is still finite, asked every NAN_CHECK_EVERY steps without stalling a GPU.

    On one GPU the answer comes back by an asynchronous copy and is read at the next ask (one interval late), so
    the host never waits for the device mid-epoch. On the CPU, and under DDP (every rank must stop alike), it is
    read at once.
    """

    def __init__(self, device: torch.device) -> None:
        self.lagged = device.type == "cuda" and world()[1] == 1
        self.answer = torch.ones((), dtype=torch.bool, pin_memory=self.lagged)
        self.copied = None  # the CUDA event after the last copy

    def finite(self, loss_sum: torch.Tensor) -> bool:
        """False once the loss sum is known to be non-finite."""
        if not self.lagged:
            return bool(torch.isfinite(all_sum(loss_sum)))
        if self.copied is not None and not self.copied.query():
            return True  # the last answer is not back yet: ask again next time
        seen = bool(self.answer)
        self.answer.copy_(torch.isfinite(loss_sum), non_blocking=True)
        self.copied = torch.cuda.Event()
        self.copied.record()
        return seen


class StepClock:
    """Times one epoch's training steps: the interval between consecutive steps' ends (loading the batch, forward,
    backward, update; never evaluation), from step WARM_STEPS on, until the run has MAX_TIMED_STEPS of them.

    On the CPU by perf_counter; on CUDA by events read once at the epoch's end, so no step waits for the device and
    an interval is the device's (which also shows the host's launch time when the host is the bottleneck).
    """

    def __init__(self, device: torch.device, room: int) -> None:
        self.cuda, self.room = device.type == "cuda", room
        self.marks: list = []  # perf_counter() values, or recorded CUDA events

    def tick(self, step: int) -> None:
        """Mark the end of the epoch's `step`-th step (0-based) if it bounds a timed interval."""
        if step < WARM_STEPS - 1 or len(self.marks) > self.room:
            return
        if self.cuda:
            self.marks.append(torch.cuda.Event(enable_timing=True))
            self.marks[-1].record()
        else:
            self.marks.append(time.perf_counter())

    def seconds(self) -> list[float]:
        """The timed steps' durations."""
        if self.cuda and self.marks:
            self.marks[-1].synchronize()
            return [a.elapsed_time(b) / 1000 for a, b in zip(self.marks, self.marks[1:])]
        return [b - a for a, b in zip(self.marks, self.marks[1:])]


def train_epoch(parts: Parts, config: TrialConfig, epoch: int, device: torch.device, *, state: TrainState) -> float:
    """One pass over the training split (forward, backward, clip, step, schedule, EMA); the mean train loss.

    A non-finite loss ends the epoch early (FiniteWatch, every NAN_CHECK_EVERY steps). The run's first step is
    timed (one device sync) into `state.first_step`, and the warm steps by a StepClock into `state.step_times`.
    """
    parts.model.train()
    loss_sum, step0, watch = torch.zeros((), device=device), epoch * parts.steps, FiniteWatch(device)
    clock = StepClock(device, MAX_TIMED_STEPS - len(state.step_times))
    for i, (x, y) in enumerate(parts.train_loader):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if parts.mixup:
            x, y = parts.mixup(x, y)
        with autocast(device, config.amp):
            loss = parts.loss_fn(parts.forward(x), y)
        parts.opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(parts.model.parameters(), config.grad_clip)
        parts.opt.step()
        parts.sched.step_update(step0 + i + 1)
        if parts.ema:
            parts.ema.update(parts.model, step=step0 + i + 1)
        loss_sum += loss.detach()
        if state.first_step is None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            state.first_step = time.perf_counter() - state.started
        clock.tick(i)
        if (i + 1) % NAN_CHECK_EVERY == 0 and not watch.finite(loss_sum):
            break
    state.step_times += clock.seconds()
    return all_sum(loss_sum).item() / (i + 1) / world()[1]


def check_divergence(state: TrainState, config: TrialConfig, epoch: int, train_loss: float, *,
                     init_loss: float) -> None:
    """Mark the trial diverged when the loss is not finite or grew beyond diverge_factor × its reference.

    Epoch 0 is held to the loss at init, ln(classes) (the zero-initialised head predicts uniformly); later
    epochs to epoch 0's loss.
    """
    ref, ref_name = (state.first_loss, "first epoch") if state.first_loss is not None else (init_loss, "at init")
    if state.first_loss is None:
        state.first_loss = train_loss
    if not math.isfinite(train_loss) or train_loss > config.diverge_factor * ref:
        state.status = "diverged"
        state.message = (f"epoch {epoch}: train loss {train_loss:.4g} ({ref_name} {ref:.4g}, "
                         f"factor {config.diverge_factor})")


def hopeless(errors: list[float], epochs: int, num_classes: int, *, margin: float = STOP_MARGIN,
             fraction: float = STOP_FRACTION, min_epochs: int = STOP_MIN_EPOCHS) -> bool:
    """Whether a trial with these per-epoch val errors (percent) so far, of `epochs`, is hopeless: it has run at
    least max(min_epochs, ceil(fraction × epochs)) epochs, fewer than all, and every one of them ended within
    `margin` points of chance error, 100·(1 − 1/num_classes). A pure function of the curve (the replay uses it)."""
    k = len(errors)
    if k >= epochs or k < max(min_epochs, math.ceil(fraction * epochs - 1e-9)):
        return False
    chance = 100.0 * (1 - 1 / num_classes)
    return all(e >= chance - margin for e in errors)


def check_hopeless(state: TrainState, config: TrialConfig, num_classes: int) -> None:
    """Mark the trial stopped (did not train) when its curve so far is hopeless (see `hopeless`)."""
    errors = [h.val_error for h in state.history]
    if hopeless(errors, config.epochs, num_classes):
        chance = 100.0 * (1 - 1 / num_classes)
        state.status = "stopped"
        state.message = (f"stopped early at epoch {len(errors)} of {config.epochs}: did not train (val error "
                         f"{min(errors):.1f}–{max(errors):.1f}% at every epoch, within {STOP_MARGIN:g} points of "
                         f"chance {chance:.1f}%)")


def eval_model(parts: Parts) -> torch.nn.Module:
    """The weights to evaluate: EMA's if any; the plain model under DDP (whose forward would sync buffers)."""
    return parts.ema.module if parts.ema else parts.forward if world()[1] == 1 else parts.model


def write_checkpoint(ckpt: Path | None, config: TrialConfig, parts: Parts, state: TrainState, *,
                     result: TrialResult | None, runtime: dict) -> None:
    """Rank 0 writes everything the next epoch needs (and the result once finished); the other ranks wait."""
    if ckpt is None:
        return
    if world()[0] == 0:
        save_checkpoint(ckpt, {
            "config": config_key(config), "runtime": runtime, "model": parts.model.state_dict(),
            "optimizer": parts.opt.state_dict(), "scheduler": parts.sched.state_dict(),
            "ema": parts.ema.state_dict() if parts.ema else None,
            "history": [h.model_dump() for h in state.history], "first_loss": state.first_loss,
            "seconds": state.seconds(), "result": result.model_dump() if result is not None else None})
    barrier()


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
