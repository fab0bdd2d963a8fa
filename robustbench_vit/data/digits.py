"""The embedded default: scikit-learn's 1,797 handwritten digits, upsampled to 16×16, fixed stratified split.

Augmentation is a ±1 px translation (no flips: digits are not mirror-symmetric); ±2 px of a 16 px digit
cost 10–15 points of error in 10-epoch runs.

The images are read straight from the CSV file scikit-learn ships (`sklearn/datasets/data/digits.csv.gz`),
without importing scikit-learn (1–3 s per process, most of a fresh trial's time before its first step), and
the split is the stored mask VAL_MASK: the 20% that `train_test_split(stratify=y, random_state=0)` puts in
validation (tests/test_data.py checks it against scikit-learn), so it no longer depends on scikit-learn's version.
Each process builds the tensors once (`digits_tensors`); every later trial of a worker reuses them.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robustbench_vit.data.bundle import DataBundle
from robustbench_vit.errors import UserError

IMG_SIZE = 16
VAL_FRACTION = 0.2
SPLIT_SEED = 0
# bit i (numpy packbits order) = sample i is in validation: sklearn's train_test_split(test_size=VAL_FRACTION,
# stratify=target, random_state=SPLIT_SEED) of the 1,797 samples; 360 set
VAL_MASK = (
    "000004883524104000064100934205001a00080100240028062c12001000940a009019120420f8a0028110a000080a8820441524494240"
    "a00a0000004004d80000818020004805c400104008a0100005404800301000020ec409000224840083a8013c20a6980a0000000b0840"
    "0804a0184802024041c1008004404684376a810216004480004042a0a4180a5000840b8561c608108008004c80c02004068e00010882"
    "008100380803c008190000100e01008410a0210033282904c044c080680e0102830082008822a6402c24042108a860809081a00c0282"
    "0242120138a41500")
NUM_SAMPLES = 1797


def digits_file() -> Path:
    """scikit-learn's digits CSV (64 pixel columns 0–16, then the label), found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(next(iter(spec.submodule_search_locations or []), "")) / "datasets" / "data" / "digits.csv.gz" \
        if spec else None
    if path is None or not path.is_file():
        raise UserError("dataset digits needs scikit-learn's embedded digits.csv.gz (pip install scikit-learn)")
    return path


def val_mask() -> np.ndarray:
    """The validation samples of the fixed split, as a boolean mask over the 1,797 digits."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(VAL_MASK), dtype=np.uint8))[:NUM_SAMPLES].astype(bool)


@functools.cache
def digits_tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised train images, train labels, val images, val labels on the CPU (built once per process)."""
    with gzip.open(digits_file(), "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    x = torch.from_numpy(table[:, :64].copy()).view(-1, 1, 8, 8) / 16.0  # N×1×8×8 in [0, 1]
    x = F.interpolate(x, size=(IMG_SIZE, IMG_SIZE), mode="bilinear", align_corners=False)
    y = torch.from_numpy(table[:, 64].astype(np.int64))
    va = torch.from_numpy(val_mask())
    mean, std = x[~va].mean(), x[~va].std()
    x = (x - mean) / std
    return x[~va], y[~va], x[va], y[va]


def load_digits(root: str | None = None, device: str | torch.device = "cpu", img_size: int | None = None) -> DataBundle:
    """Digits 0–9 as 1×16×16 tensors (normalised by the train split's mean / std), 80/20 stratified split."""
    tx, ty, vx, vy = digits_tensors()
    return DataBundle(name="digits", num_classes=10, in_chans=1, img_size=IMG_SIZE, train_x=tx.to(device),
                      train_y=ty.to(device), val_x=vx.to(device), val_y=vy.to(device), pad=1, flip=False)
