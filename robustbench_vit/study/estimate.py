"""What a study will cost before it runs: planned trials, epochs, GPU-hours by FLOPs, CPU time (`--dry-run`).

CPU time comes from a training step of each model timed here, at the study's batch and threads (`time_step`: a few
steps, about a second per micro model), not from FLOPs: a `regnety_micro` step (grouped convs, SE blocks) costs
1.6–2× a ViT's on a CPU at 0.77× their FLOPs (2026-12-07: `reproduce`'s FLOP estimate read 12 min for 18 min
measured; timed steps, 18–21 min). A model whose step the FLOP rate puts above MAX_TIMED_STEP_S is not timed (large
models on a CPU): the FLOP rate stands in. The workers are assumed to have a core each; sharing the cores with other
work slows them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robustbench_vit.models import model_complexity
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.study.plan import plan
from robustbench_vit.study.spec import StudySpec
from robustbench_vit.train.config import TrialConfig
from robustbench_vit.train.steptime import time_step

GPU_TFLOPS = 100.0  # assumed sustained bf16 training throughput of one GPU: an A100-class GPU at ~1/3 of peak
CPU_GFLOPS = 25.0  # training FLOP/s of one single-threaded worker, for models too large to time: micro, 2026-12-03
TRIAL_OVERHEAD_S = 1.5  # per trial on CPU: building the model, loading the data, the first step (same measurement)
# Images per epoch: trained on (a `train_subset` replaces the first) and evaluated (a forward pass each, every epoch).
TRAIN_IMAGES = {"digits": 1437, "fashion_mnist": 60_000, "cifar10": 50_000, "cifar100": 50_000,
                "imagefolder": 1_281_167}  # ImageNet-1k
VAL_IMAGES = {"digits": 360, "fashion_mnist": 10_000, "cifar10": 10_000, "cifar100": 10_000, "imagefolder": 50_000}
MAX_TIMED_STEP_S = 2.0  # a step the FLOP rate puts above this is not timed on the CPU (the FLOP rate instead)
TIMED_STEPS = 8  # timed steps per model after the warm-up ones, their median taken (5 gave 72–114 ms for one model)


@dataclass(frozen=True)
class Cost:
    """A plan's size: trials (all models), trial-epochs and FLOPs (6 × MACs per trained image, 2 × per evaluated)."""

    trials: int
    epochs: int  # trial-epochs over all trials
    flops: float

    @property
    def gpu_hours(self) -> float:
        """GPU-hours at GPU_TFLOPS (a lower bound for small models, which a GPU runs below its FLOP rate)."""
        return self.flops / (GPU_TFLOPS * 1e12) / 3600


def _per_model(spec: StudySpec) -> tuple[int, int, int]:
    """What each model of `spec` runs: trials, trial-epochs, and training images per epoch (a `train_subset` or the
    dataset's)."""
    points, seeds = plan(spec), len(spec.design.seed_list)
    epochs = sum(int(p.params.get("epochs", spec.epochs)) for p in points) * seeds
    return len(points) * seeds, epochs, spec.train.get("train_subset") or TRAIN_IMAGES.get(spec.dataset, 0)


def cost(specs: list[StudySpec], models: list[ModelSpec] | None = None) -> Cost:
    """The cost of running every planned trial of `specs` (for `models` instead of each spec's own, if given)."""
    trials, epochs, flops = 0, 0, 0.0
    for spec in specs:
        n_trials, n_epochs, train_n = _per_model(spec)
        images = 6 * train_n + 2 * VAL_IMAGES.get(spec.dataset, 0)
        for model in models or spec.models:
            trials, epochs = trials + n_trials, epochs + n_epochs
            flops += model_complexity(model).gmacs * 1e9 * images * n_epochs
    return Cost(trials, epochs, flops)


@dataclass(frozen=True)
class CpuTime:
    """Wall seconds of a plan on this CPU with some workers, and the step time of each (model, batch) timed for it
    (models left to the FLOP rate are absent)."""

    seconds: float
    steps: dict[tuple[str, int], float]


def cpu_time(specs: list[StudySpec], models: list[ModelSpec] | None = None, *, workers: int) -> CpuTime:
    """The wall time of every planned trial of `specs` on this CPU with `workers` single-threaded workers: per trial,
    epochs × (training steps × the model's timed step + a forward pass (a third of a step) per validation batch),
    plus TRIAL_OVERHEAD_S."""
    total, steps = 0.0, {}
    for spec in specs:
        n_trials, n_epochs, train_n = _per_model(spec)
        batch = int(spec.train.get("batch_size") or TrialConfig.model_fields["batch_size"].default)
        per_epoch_steps = math.ceil(train_n / batch) + math.ceil(VAL_IMAGES.get(spec.dataset, 0) / batch) / 3
        for model in models or spec.models:
            step = 6 * model_complexity(model).gmacs * 1e9 * batch / (CPU_GFLOPS * 1e9)  # by the FLOP rate
            if step <= MAX_TIMED_STEP_S:
                step = steps[(model.name, batch)] = _timed(model, batch, spec.threads or 1)
            total += n_epochs * per_epoch_steps * step + n_trials * TRIAL_OVERHEAD_S
    return CpuTime(total / max(1, workers), steps)


_TIMED: dict[tuple[str, int, int], float] = {}  # (model, batch, threads) → step seconds: timed once per process


def _timed(model: ModelSpec, batch: int, threads: int) -> float:
    """One training step of `model` on this CPU (CPU time on one thread, else wall time), timed once per process."""
    key = (model.model_dump_json(), batch, threads)
    if key not in _TIMED:
        t = time_step(model, batch, TIMED_STEPS, threads=threads)
        _TIMED[key] = t.cpu if threads == 1 else t.wall
    return _TIMED[key]


def cpu_text(t: CpuTime, workers: int) -> str:
    """The CPU estimate in words, with the step times it rests on."""
    batches = {b for _, b in t.steps}
    timed = ", ".join(f"{name} {s * 1e3:.0f} ms" + ("" if len(batches) == 1 else f" at batch {b}")
                      for (name, b), s in t.steps.items())
    at = f" at batch {next(iter(batches))}" if len(batches) == 1 else ""
    return (f"about {duration(t.seconds)} on this CPU with {workers} worker(s)" +
            (f" (one training step{at}, timed here just now: {timed})" if timed else ""))


def duration(seconds: float) -> str:
    """Seconds as a short duration: 40 s, 12 min, 3.5 h."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else \
        f"{seconds / 3600:,.1f} h"


def plan_lines(specs: list[StudySpec], models: list[ModelSpec] | None, *, workers: int, on_gpu: bool) -> list[str]:
    """What --dry-run prints: per study its models, points, seeds, trials and epochs, then the estimate."""
    lines = []
    for spec in specs:
        names = [m.name for m in models or spec.models]
        c = cost([spec], models)
        lines.append(f"{spec.name}: {len(names)} model(s) x {len(plan(spec))} point(s) x "
                     f"{len(spec.design.seed_list)} seed(s) = {c.trials} trials, {c.epochs} trial-epochs "
                     f"({', '.join(names)})")
    total = cost(specs, models)
    where = (f"about {total.gpu_hours:,.2f} GPU-hours at {GPU_TFLOPS:.0f} TFLOP/s per GPU" if on_gpu else
             cpu_text(cpu_time(specs, models, workers=workers), workers))
    lines.append(f"plan: {total.trials} trials, {total.epochs} trial-epochs, {where}; trials already stored are "
                 f"reused; nothing was run or written (--dry-run)")
    return lines
