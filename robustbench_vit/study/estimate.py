"""What a study will cost before it runs: planned trials, epochs, GPU-hours by FLOPs, CPU time (`--dry-run`)."""

from __future__ import annotations

from dataclasses import dataclass

from robustbench_vit.models import model_complexity
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.study.plan import plan
from robustbench_vit.study.spec import StudySpec

GPU_TFLOPS = 100.0  # assumed sustained bf16 training throughput of one GPU: an A100-class GPU at ~1/3 of peak
CPU_GFLOPS = 25.0  # training FLOP/s of one single-threaded worker (see `Cost`): micro models on digits, 2026-12-03
TRIAL_OVERHEAD_S = 1.5  # per trial on CPU: building the model, loading the data, the first step (same measurement)
# Images per epoch: trained on (a `train_subset` replaces the first) and evaluated (a forward pass each, every epoch).
TRAIN_IMAGES = {"digits": 1437, "fashion_mnist": 60_000, "cifar10": 50_000, "cifar100": 50_000,
                "imagefolder": 1_281_167}  # ImageNet-1k
VAL_IMAGES = {"digits": 360, "fashion_mnist": 10_000, "cifar10": 10_000, "cifar100": 10_000, "imagefolder": 50_000}


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

    def cpu_seconds(self, workers: int) -> float:
        """Wall seconds on this machine's CPU with `workers` single-threaded workers (a rough figure)."""
        return (self.flops / (CPU_GFLOPS * 1e9) + self.trials * TRIAL_OVERHEAD_S) / max(1, workers)


def cost(specs: list[StudySpec], models: list[ModelSpec] | None = None) -> Cost:
    """The cost of running every planned trial of `specs` (for `models` instead of each spec's own, if given)."""
    trials, epochs, flops = 0, 0, 0.0
    for spec in specs:
        points, seeds = plan(spec), len(spec.design.seed_list)
        images = 6 * (spec.train.get("train_subset") or TRAIN_IMAGES.get(spec.dataset, 0)) + \
            2 * VAL_IMAGES.get(spec.dataset, 0)
        for model in models or spec.models:
            macs = model_complexity(model).gmacs * 1e9
            for p in points:
                n = int(p.params.get("epochs", spec.epochs)) * seeds
                epochs += n
                flops += macs * images * n
            trials += len(points) * seeds
    return Cost(trials, epochs, flops)


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
             f"about {duration(total.cpu_seconds(workers))} on this CPU with {workers} worker(s)")
    lines.append(f"plan: {total.trials} trials, {total.epochs} trial-epochs, {where}; trials already stored are "
                 f"reused; nothing was run or written (--dry-run)")
    return lines
