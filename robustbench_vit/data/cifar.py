"""CIFAR-10 / CIFAR-100 from a local folder in torchvision's python-pickle format (never downloads)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from robustbench_vit.data.bundle import DataBundle
from robustbench_vit.errors import UserError

# name: (folder, train files, val files, label key, classes, mean, std)
LAYOUTS = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels", 10,
                (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", 100,
                 (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def find_folder(name: str, root: str | None) -> Path:
    """The folder holding the pickle files: `root/<folder>` or `root` itself (UserError when neither)."""
    folder = LAYOUTS[name][0]
    if root is None:
        raise UserError(f"dataset {name} needs --data-root: a folder containing {folder}/ (torchvision's format)")
    base = Path(root).expanduser()
    for cand in (base / folder, base):
        if cand.name == folder and cand.is_dir() or (cand / LAYOUTS[name][1][0]).is_file():
            return cand
    raise UserError(f"data root {base}: no {folder}/ folder with {', '.join(LAYOUTS[name][1] + LAYOUTS[name][2])} "
                    f"(expected torchvision's {name} python files; nothing is downloaded)")


def read_batches(folder: Path, files: list[str], label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate CIFAR pickle files into N×3×32×32 uint8 images and N labels (UserError when malformed)."""
    xs, ys = [], []
    for f in files:
        path = folder / f
        if not path.is_file():
            raise UserError(f"{path}: missing (expected torchvision's CIFAR files {', '.join(files)} in {folder})")
        try:
            with open(path, "rb") as fh:
                d = pickle.load(fh, encoding="latin1")
            x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(d[label_key], dtype=np.int64)
        except Exception as e:  # noqa: BLE001 — any decoding problem is the same user-facing error
            raise UserError(f"{path}: not a CIFAR pickle (expected a dict with 'data' N×3072 uint8 and "
                            f"'{label_key}'; {type(e).__name__}: {e})") from None
        if len(x) != len(y) or len(y) == 0 or y.min() < 0 or y.max() >= num_classes:
            raise UserError(f"{path}: {len(x)} images but {len(y)} labels in 0..{num_classes - 1} expected")
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def load_cifar(name: str, root: str | None = None, device: str | torch.device = "cpu",
               img_size: int | None = None) -> DataBundle:
    """CIFAR-10 or CIFAR-100 as normalised 3×32×32 tensors on `device` (train / test as train / val)."""
    _, train_files, val_files, label_key, num_classes, mean, std = LAYOUTS[name]
    folder = find_folder(name, root)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)

    def tensors(files):
        """Normalised image and label tensors of some pickle files."""
        x, y = read_batches(folder, files, label_key, num_classes)
        return ((torch.from_numpy(x).float() / 255 - m) / s).to(device), torch.from_numpy(y).to(device)

    (tx, ty), (vx, vy) = tensors(train_files), tensors(val_files)
    return DataBundle(name=name, num_classes=num_classes, in_chans=3, img_size=32, train_x=tx, train_y=ty,
                      val_x=vx, val_y=vy, pad=4, flip=True)


def write_synthetic(root: str | Path, name: str = "cifar10", n: int = 20, seed: int = 0) -> dict:
    """Random pixels and labels in torchvision's layout under `root` (speed measurements, tests): `n` images per
    pickle file. Returns {file: (N×3072 uint8 data, labels)}."""
    folder_name, train_files, val_files, label_key, num_classes, *_ = LAYOUTS[name]
    rng, folder = np.random.default_rng(seed), Path(root) / folder_name
    folder.mkdir(parents=True)
    written = {}
    for f in train_files + val_files:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, num_classes, n).tolist()
        with open(folder / f, "wb") as fh:
            pickle.dump({"data": data, label_key: labels, "batch_label": f}, fh)
        written[f] = (data, labels)
    return written
