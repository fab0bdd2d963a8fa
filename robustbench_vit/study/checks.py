"""Checks run before a study writes anything: its dataset loads, every user stem builds at every size, and (for
the slurm executor) the cluster answers and has the partition."""

from __future__ import annotations

import shutil
import subprocess

from robustbench_vit.errors import UserError, choices
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.study.spec import StudySpec


def check_data(spec: StudySpec, models: list[ModelSpec]) -> int:
    """Load the study's dataset once (UserError if its folder is missing or malformed); returns its class count.

    Each model's input size must match the data (the trainer would refuse every trial otherwise).
    """
    from robustbench_vit.data import load_dataset
    from robustbench_vit.models import size_info

    infos = {m.name: size_info(m.size) for m in models}
    data = load_dataset(spec.dataset, spec.data_root, img_size=next(iter(infos.values()))["img_size"])
    for name, info in infos.items():
        if (info["in_chans"], info["img_size"]) != (data.in_chans, data.img_size):
            raise UserError(f"{spec.source}: model {name!r} takes {info['in_chans']}×{info['img_size']}px "
                            f"images but dataset {spec.dataset!r} has {data.in_chans}×{data.img_size}px")
    return data.num_classes


def check_stems(models: list[ModelSpec], num_classes: int) -> None:
    """Build every model with a user stem (or stem options) once: UserError naming the model if it fails."""
    from robustbench_vit.models import model_complexity, validate_stem
    from robustbench_vit.models.sizes import BUILTIN_STEMS

    for model in models:
        if model.stem in BUILTIN_STEMS.values() and not model.stem_options:
            continue
        validate_stem(model)
        try:
            model_complexity(model, num_classes)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 — any failure of user code is the user's to fix
            raise UserError(f"stem {model.stem!r} ({model.name}): building the model failed: "
                            f"{type(e).__name__}: {e}") from None


def preflight(spec: StudySpec, models: list[ModelSpec]) -> None:
    """Everything that can be checked before storage is written and trials are launched."""
    check_stems(models, check_data(spec, models))


def check_slurm(partition: str | None) -> None:
    """SLURM's commands are on PATH, its controller answers `sinfo`, and `partition` (if given) exists."""
    missing = [c for c in ("sbatch", "sinfo", "sacct") if shutil.which(c) is None]
    if missing:
        raise UserError(f"--executor slurm: {', '.join(missing)} not found on PATH; run from a SLURM login node "
                        f"(tests/cluster/slurm-local.sh starts a single-node cluster on this machine)")
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise UserError("--executor slurm: the SLURM controller did not answer `sinfo` within 60 s") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit code {proc.returncode}"]
        raise UserError(f"--executor slurm: the SLURM controller did not answer: {lines[-1]}")
    partitions = [p.rstrip("*") for p in proc.stdout.split()]
    if partition and partition not in partitions:
        raise UserError(f"SLURM partition {partition!r} does not exist; allowed: {choices(partitions)}")


# squeue reasons for a job whose request exceeds what its partition offers: it would stay pending for ever
NEVER_STARTS = ("PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "BadConstraints")


def check_slurm_jobs_can_start(job_ids: list[str]) -> None:
    """Raise when SLURM holds one of `job_ids` pending for a reason no wait can end (it asks for more CPUs, memory,
    nodes or time than its partition has); a failing `squeue` says nothing (the next poll asks again)."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    if not arrays:
        return
    try:
        proc = subprocess.run(["squeue", "-h", "-t", "PD", "-j", ",".join(arrays), "-o", "%i|%r|%P|%D|%C|%m|%l"],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        job, reason, partition, nodes, cpus, mem, limit = line.split("|")
        if reason in NEVER_STARTS:
            raise UserError(f"SLURM job {job} can never start in partition {partition!r} ({reason}): it asks "
                            f"{nodes} node(s), {cpus} CPU(s) in all, {mem} memory per node, for {limit}: more than the "
                            f"partition offers (`scontrol show partition {partition}`); lower --slurm-cpus, "
                            f"--trials-per-gpu, --slurm-gpus or --slurm-option mem=")
