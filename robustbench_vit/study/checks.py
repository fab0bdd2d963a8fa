"""Checks run before a study writes anything: its dataset loads, every user stem builds at every size, and (for
the slurm executor) the cluster answers and has the partition."""

from __future__ import annotations

import shutil
import subprocess

from robustbench_vit.data import load_dataset
from robustbench_vit.errors import UserError, choices
from robustbench_vit.models import model_complexity, size_info, validate_stem
from robustbench_vit.models.sizes import BUILTIN_STEMS
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.study.spec import StudySpec


def check_data(spec: StudySpec, models: list[ModelSpec]) -> int:
    """Load the study's dataset once (UserError if its folder is missing or malformed); returns its class count.

    Each model's input size must match the data (the trainer would refuse every trial otherwise).
    """
    infos = {m.name: size_info(m.size) for m in models}
    data = load_dataset(spec.dataset, spec.data_root, img_size=next(iter(infos.values())).img_size,
                        train_subset=spec.train.get("train_subset"))
    for name, info in infos.items():
        if (info.in_chans, info.img_size) != (data.in_chans, data.img_size):
            raise UserError(f"{spec.source}: model {name!r} takes {info.in_chans}×{info.img_size}px "
                            f"images but dataset {spec.dataset!r} has {data.in_chans}×{data.img_size}px")
    return data.num_classes


def check_stems(models: list[ModelSpec], num_classes: int) -> None:
    """Build every model with a user stem (or stem options) once: UserError naming the model if it fails (references
    are built-in: RegNetY's configs are ours, a timm name was checked when the spec was read)."""
    for model in models:
        if model.is_reference or (model.stem in BUILTIN_STEMS.values() and not model.stem_options):
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

