"""GPUs for a study's workers: how many there are here, and how many trials share each (--trials-per-gpu).

Small models (micro, tiny at 32 px) use a sliver of a modern GPU, so K trial processes share one: local runs
start K workers per visible GPU, SLURM jobs of one GPU run K trial workers (one task each). Each trial keeps its
own checkpoint, result, heartbeat and retry. The automatic K comes from the models' size and a per-trial memory
estimate against the GPU's memory; models of 1 GF and up get one GPU per trial.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from robustbench_vit.models import ModelSpec, model_complexity, size_info
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


def visible_gpus() -> int:
    """GPUs the local workers can use: CUDA's count, or $ROBUSTBENCH_VIT_STANDIN_GPUS stand-ins on a CPU machine.

    With stand-ins each worker is still pinned to "its" GPU (CUDA_VISIBLE_DEVICES, recorded with the trial) and
    trains on the CPU: how tests check K workers per device without a GPU.
    """
    standin = os.environ.get(STANDIN_ENV)
    if standin:
        return int(standin)
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def gpu_memory_gib() -> float | None:
    """Memory of this machine's first GPU in GiB (None without CUDA)."""
    import torch

    return torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else None


def trial_memory_gib(spec: StudySpec, model: ModelSpec) -> float:
    """Estimated peak GPU memory of one trial of `model` in GiB.

    Context, plus the dataset when it lives on the device, plus 20 bytes per parameter (fp32 weights, gradients,
    AdamW's two moments, EMA), plus activations: per layer and token 34·d + 5·heads·tokens bytes in 16-bit
    (Korthikanti et al. 2022, no recomputation; doubled without bf16) times batch × tokens × depth.
    """
    info, cx = size_info(model.size), model_complexity(model)
    tokens = (info["img_size"] // info["patch_size"]) ** 2 + 1
    batch = int(spec.train.get("batch_size", TrialConfig.model_fields["batch_size"].default))
    per_token_layer = 34 * info["embed_dim"] + 5 * info["num_heads"] * tokens
    acts = batch * tokens * cx["depth"] * per_token_layer * (1 if spec.train.get("amp", True) else 2)
    return CONTEXT_GIB + (RESIDENT_BYTES.get(spec.dataset, 0) + 20 * cx["params"] + acts) / 2**30


@dataclass(frozen=True)
class Packing:
    """How many trials share a GPU, and why (printed when a study starts on GPUs)."""

    trials_per_gpu: int
    why: str
    asked: bool = False  # by --trials-per-gpu or the study, not chosen automatically


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
    sizes = {m.name: model_complexity(m)["gmacs"] for m in models}
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
