"""Tiny on-disk datasets for tests: CIFAR pickles in torchvision's layout and a PNG image folder."""

import numpy as np

from robustbench_vit.data.cifar import write_synthetic


def write_cifar(root, name="cifar10", n=20, seed=0):
    """Write tiny CIFAR pickles in torchvision's layout; returns the per-file (data, labels)."""
    return write_synthetic(root, name, n, seed)


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
