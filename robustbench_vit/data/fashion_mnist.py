"""Fashion-MNIST from its four local IDX files (Debian's `dataset-fashion-mnist` package); nothing is downloaded.

Where: `--data-root DIR` holding the four files (gzip or plain), or DIR/FashionMNIST/raw/ (torchvision's layout);
without it DEFAULT_ROOT, where `apt-get install dataset-fashion-mnist` puts them. Every file's magic number, shape,
count (the official 60,000 / 10,000), length and label range is checked; a missing, truncated or wrong file is a
one-line UserError naming the file, what is wrong and the fix.

Split: validation is the official test set (t10k, all 10,000 images, 1,000 per class), fixed. Training is the
official 60,000, or with TrialConfig.train_subset = k a fixed stratified subset (`subset_indices`): each class's
images in one permutation drawn with seed SUBSET_SEED, classes interleaved, the first k taken, so a subset is
the same in every process and smaller subsets lie inside larger ones. Images are scaled to [0, 1], resized once per
process (bilinear, antialiased) and normalised by the mean / std of the training images used.

Resolution: IMG_SIZE = 16 (the `micro` size: 16×16, patch 4, 16 tokens). Native 28×28 at patch 4 is 49 tokens,
~3.4× the cost per epoch (~94 s vs ~28 s per full epoch on one core; issue 26's measurements). 32×32 at patch 8
also keeps 16 tokens, with a patchify stem nearer the paper's p = 16 and a third stride-2 conv in the conv stem; it
was tried on 2026-12-07 as a trial size (the micro trunk, conv widths 8/16/32) in `lr_wd_stability --preset fashion`
(16 random (lr, wd) points, 6 epochs, 5,000 images, 2 cores) beside micro on the same points: the conv stem's
Δ-EDF area advantage was +0.003 [−0.074, +0.068] at 32 px against +0.058 [−0.040, +0.128] at 16 px (bests 19.3
vs 22.1% and 20.3 vs 21.0%; 516 s vs 491 s), so the larger patch does not bring out ViT_P's instability here
and 16 px stays. A model of another 1-channel size gets its own side.

Augmentation (TrialConfig.augment, off by default): random horizontal flips only (FLIP; clothes, shoes and bags
are roughly mirror-symmetric), no crop (PAD = 0): the items are centred and size-normalised, and at 16 px a 1 px
shift is 6% of the image. Measured 2026-12-06 on a 2-core CPU, shared (run_trial, one torch thread, AdamW lr 1e-3,
wd 0.05, batch 64, seed 0, 5,000-image subset; val error % on the 10,000 test images; seconds per trial, which
the shared machine inflates ~2×; the 10-epoch runs ran two at a time):

    augmentation         4 epochs: vit_c_micro   vit_p_micro    10 epochs: vit_c_micro   vit_p_micro
    none                            24.6 (71 s)   33.5 (22 s)                18.4 (204 s)  19.2 (190 s)
    flip                            31.4 (47 s)   35.8 (22 s)                19.6 (179 s)  20.0 (170 s)
    crop ±1 px                      37.4 (24 s)   40.6 (22 s)
    crop ±1 px + flip               34.2 (20 s)   46.7 (20 s)                23.3 (172 s)  28.7 (174 s)
    crop ±2 px                      38.7 (20 s)   47.7 (19 s)
    crop ±2 px + flip               39.0 (23 s)   48.9 (17 s)

Every augmentation slows these short runs (hence augment stays off by default); crops cost 5–15 points even at
10 epochs, a flip only ~1 point there (the gap shrinking with training), so flips alone are what augment turns on
for the longer, full-set runs where over-fitting starts. Loading the four files and resizing all 70,000 images
takes ~3.5 s per process on that machine; a subset or another trial of the process reuses them (~0.1 s).
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robustbench_vit.data.bundle import DataBundle
from robustbench_vit.errors import UserError

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
RAW_LAYOUT = Path("FashionMNIST") / "raw"  # torchvision's folder under its root
SPLITS = {  # split: (images file, labels file, official count)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # IDX: unsigned bytes, 3 dims (images) / 1 dim (labels)
SIDE, NUM_CLASSES = 28, 10
IMG_SIZE = 16
PAD, FLIP = 0, True  # no crop, random horizontal flips (measured: see above)
SUBSET_SEED = 0
FIX = "fix: apt-get install dataset-fashion-mnist, or --data-root a folder holding the four official files"


def bad(path: Path, what: str) -> UserError:
    """The one-line error for a file: its path, what is wrong, the fix."""
    return UserError(f"{path}: {what}; {FIX}")


def file_in(folder: Path, name: str) -> Path | None:
    """`folder/name` or `folder/name.gz`, whichever exists (None when neither)."""
    for cand in (folder / name, folder / f"{name}.gz"):
        if cand.is_file():
            return cand
    return None


def find_folder(root: str | None) -> Path:
    """The folder holding the IDX files: `root` or `root/FashionMNIST/raw` (default root: DEFAULT_ROOT)."""
    base = Path(root).expanduser() if root is not None else DEFAULT_ROOT
    if not base.is_dir():
        raise bad(base, "no such folder (Fashion-MNIST's IDX files expected there)")
    for folder in (base, base / RAW_LAYOUT):
        if any(file_in(folder, name) for split in SPLITS.values() for name in split[:2]):
            return folder
    names = ", ".join(f"{n}[.gz]" for split in SPLITS.values() for n in split[:2])
    raise bad(base, f"no Fashion-MNIST files ({names}) here or in {RAW_LAYOUT}/")


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by its magic, not its name); UserError when unreadable."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError, zlib.error) as e:
        raise bad(path, f"cannot be read or is a truncated / corrupt gzip file ({type(e).__name__}: {e})") from None


def read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes as an array, its header (magic, big-endian dims) and length checked."""
    data = read_bytes(path)
    head = 4 + 4 * ndim
    if len(data) < head:
        raise bad(path, f"only {len(data)} bytes, shorter than an IDX header ({head} bytes)")
    found, *shape = struct.unpack(f">{1 + ndim}I", data[:head])
    if found != magic:
        raise bad(path, f"magic number {found} is not {magic} (IDX {'images' if ndim == 3 else 'labels'}, "
                        f"unsigned bytes, {ndim} dims): not the right file")
    if ndim == 3 and tuple(shape[1:]) != (SIDE, SIDE):
        raise bad(path, f"images are {shape[1]}×{shape[2]}, Fashion-MNIST's are {SIDE}×{SIDE}")
    size = int(np.prod(shape))
    if len(data) - head != size:
        what = "truncated" if len(data) - head < size else "longer than its header says"
        raise bad(path, f"{what}: header says {'×'.join(map(str, shape))} bytes of data, file has {len(data) - head}")
    return np.frombuffer(data, dtype=np.uint8, offset=head).reshape(shape)


def read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's N×28×28 uint8 images and N int64 labels, counts and label range checked."""
    images_name, labels_name, count = SPLITS[split]
    paths = [file_in(folder, n) or folder / f"{n}[.gz]" for n in (images_name, labels_name)]
    for path in paths:
        if not path.is_file():
            raise bad(path, "missing")
    x, y = read_idx(paths[0], IMAGE_MAGIC, 3), read_idx(paths[1], LABEL_MAGIC, 1)
    if len(y) != len(x):
        raise bad(paths[1], f"{len(y)} labels but {paths[0].name} has {len(x)} images")
    if len(x) != count:
        raise bad(paths[0], f"{len(x)} images, the official {split} set has {count}")
    if y.max() >= NUM_CLASSES:
        raise bad(paths[1], f"label {int(y.max())} out of range 0..{NUM_CLASSES - 1}")
    return x, y.astype(np.int64)


@functools.cache
def resized_tensors(folder: str, img_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train images, train labels, val images, val labels on the CPU, in [0, 1] at img_size² (once per process)."""
    out = []
    for split in SPLITS:
        x, y = read_split(Path(folder), split)
        t = torch.from_numpy(x.copy()).unsqueeze(1).float() / 255  # N×1×28×28
        if img_size != SIDE:
            t = F.interpolate(t, size=(img_size, img_size), mode="bilinear", align_corners=False, antialias=True)
        out += [t.contiguous(), torch.from_numpy(y)]
    return tuple(out)


def subset_indices(labels: np.ndarray, k: int | None) -> np.ndarray:
    """The fixed stratified training subset of k images (sorted indices; None: all): nested, balanced to ±1."""
    if k is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(SUBSET_SEED)
    rank = np.empty(len(labels), dtype=np.int64)  # each image's place in its class's fixed permutation
    for c in range(NUM_CLASSES):
        members = np.flatnonzero(labels == c)
        rank[rng.permutation(members)] = np.arange(len(members))
    order = np.lexsort((labels, rank))  # by rank, then class: classes interleaved
    return np.sort(order[:k])


@functools.cache
def fashion_tensors(folder: str, img_size: int, train_subset: int | None):
    """Normalised (train subset, all val) tensors on the CPU: mean / std of the training images used."""
    tx, ty, vx, vy = resized_tensors(folder, img_size)
    idx = torch.from_numpy(subset_indices(ty.numpy(), train_subset))
    tx, ty = tx[idx], ty[idx]
    mean, std = tx.mean(), tx.std()
    return (tx - mean) / std, ty, (vx - mean) / std, vy


def load_fashion_mnist(root: str | None = None, device: str | torch.device = "cpu", img_size: int | None = None,
                       train_subset: int | None = None) -> DataBundle:
    """Fashion-MNIST as normalised 1×S×S tensors on `device` (S: img_size, default 16); val: the official test set."""
    total = SPLITS["train"][2]
    if train_subset is not None and not NUM_CLASSES <= train_subset <= total:
        raise UserError(f"train_subset {train_subset} is out of range: fashion_mnist has {total} training images "
                        f"and {NUM_CLASSES} classes (give {NUM_CLASSES}..{total}, or leave it unset for all)")
    size = img_size or IMG_SIZE
    tx, ty, vx, vy = fashion_tensors(str(find_folder(root).resolve()), size, train_subset)
    return DataBundle(name="fashion_mnist", num_classes=NUM_CLASSES, in_chans=1, img_size=size,
                      train_x=tx.to(device), train_y=ty.to(device), val_x=vx.to(device), val_y=vy.to(device),
                      pad=PAD, flip=FLIP)
