"""The embedded default: scikit-learn's 1,797 handwritten digits, upsampled to 16×16, fixed stratified split.

Augmentation is a ±1 px translation (no flips: digits are not mirror-symmetric); ±2 px of a 16 px digit
cost 10–15 points of error in 10-epoch runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robustbench_vit.data.bundle import DataBundle

IMG_SIZE = 16
VAL_FRACTION = 0.2
SPLIT_SEED = 0


def load_digits(root: str | None = None, device: str | torch.device = "cpu", img_size: int | None = None) -> DataBundle:
    """Digits 0–9 as 1×16×16 tensors (normalised by the train split's mean / std), 80/20 stratified split."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    data = sk_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0  # N×1×8×8 in [0, 1]
    x = F.interpolate(x, size=(IMG_SIZE, IMG_SIZE), mode="bilinear", align_corners=False)
    y = torch.tensor(data.target, dtype=torch.long)
    tr, va = train_test_split(torch.arange(len(y)).numpy(), test_size=VAL_FRACTION, stratify=y.numpy(),
                              random_state=SPLIT_SEED)
    mean, std = x[tr].mean(), x[tr].std()
    x = (x - mean) / std
    return DataBundle(name="digits", num_classes=10, in_chans=1, img_size=IMG_SIZE,
                      train_x=x[tr].to(device), train_y=y[tr].to(device),
                      val_x=x[va].to(device), val_y=y[va].to(device), pad=1, flip=False)
