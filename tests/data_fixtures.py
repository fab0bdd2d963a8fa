"""Tiny on-disk datasets for tests: CIFAR pickles in torchvision's layout and a PNG image folder."""

import pickle

import numpy as np


def write_cifar(root, name="cifar10", n=20, seed=0):
    """Write tiny CIFAR pickles in torchvision's layout; returns the per-file (data, labels)."""
    rng = np.random.default_rng(seed)
    folder, files, key, classes = {
        "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "labels", 10),
        "cifar100": ("cifar-100-python", ["train", "test"], "fine_labels", 100),
    }[name]
    (root / folder).mkdir(parents=True)
    written = {}
    for f in files:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, classes, n).tolist()
        with open(root / folder / f, "wb") as fh:
            pickle.dump({"data": data, key: labels, "batch_label": f}, fh)
        written[f] = (data, labels)
    return written


def write_image_folder(root, classes=("cat", "dog", "owl"), n_train=6, n_val=2, size=(40, 48), seed=0):
    """Write random RGB PNGs as root/{train,val}/<class>/<i>.png."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for cls in classes:
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / cls / f"{i}.png")
