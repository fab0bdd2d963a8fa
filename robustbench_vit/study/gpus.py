"""GPUs for a study's workers: how many there are here, how many trials share each (--trials-per-gpu), the
default worker count that makes, and the GPU each new local worker gets.

Small models (micro, tiny at 32 px) use a sliver of a modern GPU, so K trial processes share one: local runs
start K workers per visible GPU, SLURM jobs of one GPU run K trial workers (one task each). Each trial keeps its
own checkpoint, result, heartbeat and retry. The automatic K comes from the models' size and a per-trial memory
estimate against the GPU's memory; models of 1 GF and up get one GPU per trial.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass

import torch

from robustbench_vit.errors import UserError
from robustbench_vit.models import ModelSpec, model_complexity, size_info
from robustbench_vit.study.options import RunOptions, SlurmOptions
from robustbench_vit.study.spec import StudySpec
from robustbench_vit.train.config import TrialConfig

STANDIN_ENV = "ROBUSTBENCH_VIT_STANDIN_GPUS"  # N: plan for N GPUs that the CPU stands in for (tests, dry runs)
MAX_AUTO = 8  # the most trials auto puts on one GPU
BIG_GMACS = 1.0  # models this large (the paper's 1GF and up) fill a GPU alone
ASSUMED_GPU_GIB = 40.0  # auto plans for this much when no GPU is visible here (e.g. a SLURM login node)
CONTEXT_GIB = 0.75  # per trial process: CUDA context, cuBLAS workspace, allocator slack
USABLE = 0.85  # the share of a GPU's memory auto fills
# images × bytes of the datasets kept on the device (float32 train + val); image folders stream from the host
RESIDENT_BYTES = {"digits": 1797 * 256 * 4, "cifar10": 60_000 * 3072 * 4, "cifar100": 60_000 * 3072 * 4}


@dataclass(frozen=True)
class Packing:
    """How many trials share a GPU, and why (printed when a study starts on GPUs)."""

    trials_per_gpu: int
    why: str
    asked: bool = False  # by --trials-per-gpu or the study, not chosen automatically


def packing(spec: StudySpec, models: list[ModelSpec], options: RunOptions, slurm: SlurmOptions) -> Packing | None:
    """Trials per GPU for this run (None: no GPU here, nor SLURM); 1 where a trial takes whole GPUs (DDP or
    multi-GPU jobs), and a UserError when --trials-per-gpu or the study asked for more there."""
    on_slurm = options.executor == "slurm"
    if not on_slurm and not study_gpus(spec):
        return None
    chosen = choose_trials_per_gpu(spec, models, options.trials_per_gpu)
    if on_slurm and not chosen.asked and not (slurm.gpus_per_node or slurm.gres):
        return Packing(1, "auto: the SLURM jobs ask for no GPU")
    whole = "DDP jobs (--slurm-ddp)" if slurm.ddp else "jobs of several GPUs" if (slurm.gpus_per_node or 1) > 1 else ""
    if on_slurm and whole and chosen.trials_per_gpu > 1:
        if chosen.asked:
            raise UserError(f"{chosen.why} {chosen.trials_per_gpu}: trials share a GPU only in jobs of one GPU, not "
                            f"in {whole}; allowed: --trials-per-gpu 1, or --slurm-gpus 1 without --slurm-ddp")
        return Packing(1, f"auto: {whole} train one trial each")
    return chosen


def choose_trials_per_gpu(spec: StudySpec, models: list[ModelSpec], requested: int | None) -> Packing:
    """K: `requested` (--trials-per-gpu), else the study's `trials_per_gpu`, else automatic.

    Automatic: 1 on CPU studies and for models of 1 GF and up; otherwise as many trials as fit in 85% of the
    GPU's memory (this machine's first GPU, else an assumed 40 GiB), at most 8.
    """
    if requested is not None:
        return Packing(requested, "--trials-per-gpu", asked=True)
    if spec.trials_per_gpu != "auto":
        return Packing(int(spec.trials_per_gpu), f"{spec.source}: trials_per_gpu", asked=True)
    if spec.device == "cpu":
        return Packing(1, "auto: the study trains on the CPU")
    sizes = {m.name: model_complexity(m).gmacs for m in models}
    biggest = max(sizes, key=sizes.get)
    if sizes[biggest] >= BIG_GMACS:
        return Packing(1, f"auto: {biggest} is {sizes[biggest]:.2g} GMACs (1 GF and up fill a GPU)")
    need = max(trial_memory_gib(spec, m) for m in models)
    memory, seen = gpu_memory_gib(), "this machine's GPU"
    if memory is None:
        memory, seen = ASSUMED_GPU_GIB, "an assumed GPU"
    k = max(1, min(MAX_AUTO, math.floor(USABLE * memory / need)))
    return Packing(k, f"auto: {biggest} {sizes[biggest]:.2g} GMACs, ~{need:.1f} GiB per trial, {memory:.0f} GiB "
                      f"on {seen}")


def trial_memory_gib(spec: StudySpec, model: ModelSpec) -> float:
    """Estimated peak GPU memory of one trial of `model` in GiB.

    Context, plus the dataset when it lives on the device, plus 20 bytes per parameter (fp32 weights, gradients,
    AdamW's two moments, EMA), plus activations: per layer and token 34·d + 5·heads·tokens bytes in 16-bit
    (Korthikanti et al. 2022, no recomputation; doubled without bf16) times batch × tokens × depth. A reference CNN
    keeps about three tensors per counted activation (conv, norm, nonlinearity), 2 bytes each (4 without bf16).
    """
    info, cx = size_info(model.size), model_complexity(model)
    tokens = (info.img_size // info.patch_size) ** 2 + 1
    batch = int(spec.train.get("batch_size", TrialConfig.model_fields["batch_size"].default))
    per_token_layer = 34 * info.embed_dim + 5 * info.num_heads * tokens
    per_image = 3 * 2 * cx.activations if model.is_reference else tokens * cx.depth * per_token_layer
    acts = batch * per_image * (1 if spec.train.get("amp", True) else 2)
    return CONTEXT_GIB + (RESIDENT_BYTES.get(spec.dataset, 0) + 20 * cx.params + acts) / 2**30


def gpu_memory_gib() -> float | None:
    """Memory of this machine's first GPU in GiB (None without CUDA)."""
    return torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else None


def auto_workers(spec: StudySpec, executor: str = "auto", trials_per_gpu: int = 1) -> int:
    """The default worker count: `trials_per_gpu` per GPU, else as many as the study's pinned CPU threads fit
    here, else 1.

    Only the auto and local executors use it: inline runs in this process, SLURM submits one job per trial.
    """
    if executor not in ("auto", "local"):
        return 1
    gpus = study_gpus(spec)
    if gpus:
        return gpus * trials_per_gpu
    return max(1, (os.cpu_count() or 1) // int(spec.threads)) if spec.threads else 1


def pick_gpus(n: int, gpus: int, busy: list[int]) -> list[int | None]:
    """GPUs for `n` new local workers: the ones fewest live workers use (`busy`: theirs) first; None without GPUs."""
    if not gpus:
        return [None] * n
    load = Counter(busy)
    out: list[int | None] = []
    for _ in range(n):
        gpu = min(range(gpus), key=lambda g: (load[g], g))
        load[gpu] += 1
        out.append(gpu)
    return out


def study_gpus(spec: StudySpec) -> int:
    """The GPUs this machine's workers use for `spec` (none for a CPU study)."""
    return visible_gpus() if spec.device != "cpu" else 0


def visible_gpus() -> int:
    """GPUs the local workers can use: CUDA's count, or $ROBUSTBENCH_VIT_STANDIN_GPUS stand-ins on a CPU machine.

    With stand-ins each worker is still pinned to "its" GPU (CUDA_VISIBLE_DEVICES, recorded with the trial) and
    trains on the CPU: how tests check K workers per device without a GPU.
    """
    standin = os.environ.get(STANDIN_ENV)
    if standin:
        return int(standin)
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
