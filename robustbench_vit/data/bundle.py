"""DataBundle: one dataset's train / val data, its shape, and how to batch and augment it."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor

from robustbench_vit.data.loader import FolderLoader, TensorLoader


@dataclass
class DataBundle:
    """Train / val data: tensors in memory (small sets) or torch Datasets (image folders)."""

    name: str
    num_classes: int
    in_chans: int
    img_size: int
    train_x: Tensor | None = None  # N×C×H×W float, normalised
    train_y: Tensor | None = None  # N long
    val_x: Tensor | None = None
    val_y: Tensor | None = None
    train_set: torch.utils.data.Dataset | None = None  # used when the tensors are None
    val_set: torch.utils.data.Dataset | None = None
    pad: int = 0  # random-crop padding for tensor augmentation (0: none)
    flip: bool = False  # random horizontal flips for tensor augmentation
    train_transforms: dict | None = None  # image folders: {augment: transform} for the training set

    @property
    def num_train(self) -> int:
        """Number of training images."""
        return len(self.train_x) if self.train_x is not None else len(self.train_set)

    @property
    def num_val(self) -> int:
        """Number of validation images."""
        return len(self.val_x) if self.val_x is not None else len(self.val_set)

    def train_loader(self, batch_size: int, seed: int = 0, augment: bool = True, *, workers: int | None = None,
                     rank: int = 0, world: int = 1):
        """Shuffled, augmented training batches (full batches only, when there are more images than one batch).

        With `world` > 1 (DDP) `batch_size` is the global batch and this rank gets batch_size // world of each.
        """
        if self.train_x is not None:
            return TensorLoader(self.train_x, self.train_y, batch_size, shuffle=True, seed=seed, drop_last=True,
                                pad=self.pad if augment else 0, flip=self.flip and augment, rank=rank, world=world)
        if self.train_transforms is not None:
            self.train_set.transform = self.train_transforms[bool(augment)]
        return FolderLoader(self.train_set, batch_size, shuffle=True, seed=seed, drop_last=True,
                            workers=default_workers() if workers is None else workers,
                            pin_memory=torch.cuda.is_available(), rank=rank, world=world)

    def val_loader(self, batch_size: int, workers: int | None = None, rank: int = 0, world: int = 1):
        """Validation batches in a fixed order, no augmentation (world > 1: this rank's strided share)."""
        if self.val_x is not None:
            return TensorLoader(self.val_x, self.val_y, batch_size, rank=rank, world=world)
        return FolderLoader(self.val_set, batch_size, workers=default_workers() if workers is None else workers,
                            pin_memory=torch.cuda.is_available(), rank=rank, world=world)


def default_workers() -> int:
    """DataLoader worker processes for image folders: the CPUs but one, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))
