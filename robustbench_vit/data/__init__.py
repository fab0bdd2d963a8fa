"""Datasets by name: `digits` (embedded), `fashion_mnist` (Debian's package or local IDX files), `cifar10` /
`cifar100` (local folder), `imagefolder`."""

from __future__ import annotations

from functools import partial

import torch

from robustbench_vit.data.bundle import DataBundle
from robustbench_vit.data.cifar import load_cifar
from robustbench_vit.data.digits import load_digits
from robustbench_vit.data.fashion_mnist import load_fashion_mnist
from robustbench_vit.data.imagefolder import load_imagefolder
from robustbench_vit.data.loader import FolderLoader, TensorLoader, epoch_seed
from robustbench_vit.errors import UserError, choices

DATASETS = {
    "digits": load_digits,
    "fashion_mnist": load_fashion_mnist,
    "cifar10": partial(load_cifar, "cifar10"),
    "cifar100": partial(load_cifar, "cifar100"),
    "imagefolder": load_imagefolder,
}
SUBSET_DATASETS = {"fashion_mnist"}  # the datasets that take train_subset (a fixed stratified subset)


def check_dataset(name: str) -> None:
    """Raise UserError unless `name` is a known dataset."""
    if name not in DATASETS:
        raise UserError(f"dataset {name!r} is unknown; allowed: {choices(DATASETS)}")


def load_dataset(name: str, root: str | None = None, device: str | torch.device = "cpu",
                 img_size: int | None = None, *, train_subset: int | None = None) -> DataBundle:
    """Load a dataset by name; small sets land as tensors on `device`, `img_size` resizes image folders and
    fashion_mnist; `train_subset` (fashion_mnist only, UserError elsewhere): train on that fixed stratified subset."""
    check_dataset(name)
    if name not in SUBSET_DATASETS:
        if train_subset is not None:
            raise UserError(f"train_subset {train_subset} is for {choices(SUBSET_DATASETS)} only; dataset {name!r} "
                            f"always trains on all its images (leave train_subset unset)")
        return DATASETS[name](root=root, device=device, img_size=img_size)
    return DATASETS[name](root=root, device=device, img_size=img_size, train_subset=train_subset)


__all__ = ["DATASETS", "DataBundle", "FolderLoader", "TensorLoader", "check_dataset", "epoch_seed", "load_dataset"]
