"""ImageNet-style folders: root/train/<class>/*.png and root/val/<class>/*.png, with timm's transforms."""

from __future__ import annotations

from pathlib import Path

import torch
from timm.data import create_transform
from torchvision.datasets import ImageFolder

from robustbench_vit.data.bundle import DataBundle
from robustbench_vit.errors import UserError


def load_imagefolder(root: str | None = None, device: str | torch.device = "cpu",
                     img_size: int | None = None) -> DataBundle:
    """RGB image folders decoded per sample by DataLoader workers.

    Training images get timm's augmenting transform (random-resized crop, flip, AutoAugment) when the trial's
    `augment` is on, else the plain resize + centre crop that validation uses.
    """
    if root is None:
        raise UserError("dataset imagefolder needs --data-root: a folder with train/ and val/ class folders")
    base, size = Path(root).expanduser(), img_size or 224
    sets = {}
    for split in ("train", "val"):
        if not (base / split).is_dir():
            raise UserError(f"data root {base}: no {split}/ folder (expected {split}/<class>/<image> files)")
        try:
            sets[split] = ImageFolder(str(base / split), transform=create_transform(size))
        except (FileNotFoundError, RuntimeError) as e:
            raise UserError(f"{base / split}: no class folders with images ({e})") from None
    if sets["train"].classes != sets["val"].classes:
        raise UserError(f"data root {base}: train/ classes {sets['train'].classes} differ from val/ classes "
                        f"{sets['val'].classes}")
    plain = create_transform(size)
    augmenting = create_transform(size, is_training=True, auto_augment="original")
    return DataBundle(name="imagefolder", num_classes=len(sets["train"].classes), in_chans=3, img_size=size,
                      train_set=sets["train"], val_set=sets["val"], train_transforms={False: plain, True: augmenting})
