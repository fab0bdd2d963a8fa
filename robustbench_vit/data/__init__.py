"""Datasets by name: `digits` (embedded), `cifar10` / `cifar100` (local folder), `imagefolder`."""

from __future__ import annotations

from functools import partial

import torch

from robustbench_vit.data.bundle import DataBundle
from robustbench_vit.data.cifar import load_cifar
from robustbench_vit.data.digits import load_digits
from robustbench_vit.data.imagefolder import load_imagefolder
from robustbench_vit.data.loader import FolderLoader, TensorLoader, epoch_seed
from robustbench_vit.errors import UserError, choices

DATASETS = {
    "digits": load_digits,
    "cifar10": partial(load_cifar, "cifar10"),
    "cifar100": partial(load_cifar, "cifar100"),
    "imagefolder": load_imagefolder,
}


def check_dataset(name: str) -> None:
    """Raise UserError unless `name` is a known dataset."""
    if name not in DATASETS:
        raise UserError(f"dataset {name!r} is unknown; allowed: {choices(DATASETS)}")


def load_dataset(name: str, root: str | None = None, device: str | torch.device = "cpu",
                 img_size: int | None = None) -> DataBundle:
    """Load a dataset by name; small sets land as tensors on `device`, `img_size` only resizes image folders."""
    check_dataset(name)
    return DATASETS[name](root=root, device=device, img_size=img_size)


__all__ = ["DATASETS", "DataBundle", "FolderLoader", "TensorLoader", "check_dataset", "epoch_seed", "load_dataset"]
