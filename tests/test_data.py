"""Datasets through the real loaders: embedded digits, fake CIFAR pickles and a PNG image folder in tmp_path."""

import pickle

import numpy as np
import pytest
import torch

from tests.data_fixtures import write_cifar, write_image_folder

from robustbench_vit.data import TensorLoader, load_dataset
from robustbench_vit.data.loader import draw_augmentation, random_crop, random_flip
from robustbench_vit.errors import UserError


def test_digits_split_is_fixed_stratified_and_normalised():
    """1,797 real digits at 16×16: 80/20 split, every class in both halves, train set zero-mean unit-std."""
    b = load_dataset("digits")
    assert (b.num_classes, b.in_chans, b.img_size) == (10, 1, 16)
    assert b.train_x.shape == (1437, 1, 16, 16) and b.val_x.shape == (360, 1, 16, 16)
    assert b.train_x.dtype == torch.float32 and b.train_y.dtype == torch.long
    assert abs(b.train_x.mean().item()) < 1e-4 and abs(b.train_x.std().item() - 1) < 1e-4
    val_counts = b.val_y.bincount(minlength=10)
    assert val_counts.min() >= 35 and val_counts.max() <= 37  # stratified: ~36 per class
    again = load_dataset("digits")
    assert torch.equal(b.train_x, again.train_x) and torch.equal(b.val_y, again.val_y)
    # no image in both halves
    train_rows = {tuple(r) for r in b.train_x.flatten(1).tolist()}
    assert sum(tuple(r) in train_rows for r in b.val_x.flatten(1).tolist()) <= 5  # sklearn has a few duplicates


def test_digits_match_sklearn_without_importing_it():
    """The CSV read directly gives sklearn's images and labels; the stored split is sklearn's stratified one."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from robustbench_vit.data.digits import SPLIT_SEED, VAL_FRACTION, digits_tensors, val_mask

    sk = load_digits()
    _, va = train_test_split(np.arange(len(sk.target)), test_size=VAL_FRACTION, stratify=sk.target,
                             random_state=SPLIT_SEED)
    assert sorted(np.flatnonzero(val_mask()).tolist()) == sorted(va.tolist())
    _, ty, _, vy = digits_tensors()
    assert ty.tolist() == sk.target[~val_mask()].tolist() and vy.tolist() == sk.target[val_mask()].tolist()
    code = ("import sys; from robustbench_vit.data import load_dataset; load_dataset('digits'); "
            "print('sklearn' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"


def test_tensor_loader_seeded_per_epoch_and_covers_data():
    """Same (seed, epoch) → same batches; another epoch reshuffles; one epoch without augmentation is a permutation."""
    x = torch.arange(50, dtype=torch.float32).view(50, 1, 1, 1).expand(50, 1, 4, 4).contiguous()
    y = torch.arange(50)
    loader = TensorLoader(x, y, batch_size=16, shuffle=True, seed=3, drop_last=True)
    assert len(loader) == 3
    first = [yb.clone() for _, yb in loader]
    assert all(torch.equal(a, b) for a, b in zip(first, [yb for _, yb in loader]))
    loader.set_epoch(1)
    assert not all(torch.equal(a, b) for a, b in zip(first, [yb for _, yb in loader]))
    full = TensorLoader(x, y, batch_size=16, shuffle=True, seed=3)
    ys = torch.cat([yb for _, yb in full])
    assert len(full) == 4 and sorted(ys.tolist()) == list(range(50))
    assert all(torch.equal(xb[:, 0, 0, 0], yb.float()) for xb, yb in full)  # images stay with their labels


def test_random_crop_translates_and_flip_mirrors():
    """Each crop is its image shifted by its drawn (dy, dx), edge-replicated at the border; flips mirror whole images."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    draws = draw_augmentation(g, 1, 64, 2)[0]
    assert draws.shape == (64, 3) and draws[:, :2].min() >= 0 and draws[:, :2].max() <= 4
    out = random_crop(x, 2, draws[:, :2])
    assert out.shape == x.shape and not torch.equal(out, x)
    for i in range(64):
        dy, dx = draws[i, :2].tolist()
        xp = torch.nn.functional.pad(x[i : i + 1], (2, 2, 2, 2), mode="replicate")[0]
        assert torch.equal(out[i], xp[:, dy : dy + 8, dx : dx + 8])
    f = random_flip(x, draws[:, 2])
    for i in range(64):
        assert torch.equal(f[i], x[i].flip(2) if draws[i, 2] else x[i])
    assert 10 < int(draws[:, 2].sum()) < 54


def test_augmentation_draws_are_uniform_independent_and_seeded():
    """Offsets uniform over the 9×9 (pad 4) grid and flips fair, independently per image (chi-square on the joint
    9×9×2 table): the distribution of a per-image crop-and-flip. Same (seed, epoch): same batches; next epoch: new."""
    from scipy.stats import chisquare

    d = draw_augmentation(torch.Generator().manual_seed(1), 200, 256, 4).view(-1, 3)
    cells = (d[:, 0] * 9 + d[:, 1]) * 2 + d[:, 2]
    assert chisquare(cells.bincount(minlength=162).numpy()).pvalue > 1e-3
    x = torch.randn(300, 3, 32, 32)
    loader = TensorLoader(x, torch.arange(300), batch_size=64, shuffle=True, seed=5, pad=4, flip=True,
                          drop_last=True)
    first = [xb.clone() for xb, _ in loader]
    assert all(torch.equal(a, b) for a, b in zip(first, [xb for xb, _ in loader]))
    loader.set_epoch(1)
    assert not any(torch.equal(a, b) for a, b in zip(first, [xb for xb, _ in loader]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: checked on a GPU machine")
def test_device_augmentation_matches_the_cpu_path():
    """The same seed and epoch give the same augmented batches with the data on the GPU as on the CPU."""
    x, y = torch.randn(300, 3, 32, 32), torch.arange(300)
    cpu = TensorLoader(x, y, batch_size=64, shuffle=True, seed=5, pad=4, flip=True, drop_last=True)
    gpu = TensorLoader(x.cuda(), y.cuda(), batch_size=64, shuffle=True, seed=5, pad=4, flip=True, drop_last=True)
    for (xc, yc), (xg, yg) in zip(cpu, gpu):
        assert xg.is_cuda and torch.equal(yc, yg.cpu()) and torch.equal(xc, xg.cpu())


def test_digits_augmentation_translates_without_flip():
    """Digits: the train loader translates by up to 1 px and never flips; val batches are the stored tensors."""
    b = load_dataset("digits")
    assert b.pad == 1 and not b.flip
    tl = b.train_loader(64, seed=0)
    assert tl.pad == 1 and not tl.flip
    assert b.train_loader(64, seed=0, augment=False).pad == 0
    xb, _ = next(iter(b.val_loader(400)))
    assert torch.equal(xb, b.val_x)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_pickles_load_through_real_code(tmp_path, name):
    """Fake torchvision pickles round-trip: pixels, channel order, labels and normalisation."""
    written = write_cifar(tmp_path, name)
    for root in (tmp_path, tmp_path / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")):
        b = load_dataset(name, str(root))
        n_train = 100 if name == "cifar10" else 20
        assert b.train_x.shape == (n_train, 3, 32, 32) and b.val_x.shape == (20, 3, 32, 32)
        assert (b.num_classes, b.in_chans, b.img_size, b.pad, b.flip) == (
            10 if name == "cifar10" else 100, 3, 32, 4, True)
        data, labels = written["test_batch" if name == "cifar10" else "test"]
        mean = torch.tensor({"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}[name])
        std = torch.tensor({"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}[name])
        pixels = (b.val_x * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)) * 255
        assert torch.allclose(pixels, torch.from_numpy(data.reshape(-1, 3, 32, 32)).float(), atol=1e-3)
        assert b.val_y.tolist() == labels


def test_cifar_errors_name_path_and_expectation(tmp_path):
    """Missing root, missing folder, missing file and a malformed pickle each give one clear UserError."""
    with pytest.raises(UserError, match="needs --data-root"):
        load_dataset("cifar10")
    with pytest.raises(UserError, match=r"no cifar-10-batches-py/ folder.*data_batch_1"):
        load_dataset("cifar10", str(tmp_path / "nowhere"))
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(UserError, match=r"test_batch: missing"):
        load_dataset("cifar10", str(tmp_path))
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match=r"test_batch: not a CIFAR pickle"):
        load_dataset("cifar10", str(tmp_path))
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as fh:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, fh)
    with pytest.raises(UserError, match=r"labels in 0\.\.9"):
        load_dataset("cifar10", str(tmp_path))


def test_unknown_dataset_lists_allowed():
    """An unknown name is a UserError that lists the allowed names."""
    with pytest.raises(UserError, match=r"'mnist' is unknown; allowed: cifar10, cifar100, digits, fashion_mnist, imagefolder"):
        load_dataset("mnist")


def test_imagefolder_pngs_with_timm_transforms(tmp_path):
    """A PNG folder loads with timm's transforms at the asked size; batches are normalised RGB tensors."""
    write_image_folder(tmp_path)
    b = load_dataset("imagefolder", str(tmp_path), img_size=32)
    assert (b.num_classes, b.in_chans, b.img_size, b.num_train, b.num_val) == (3, 3, 32, 18, 6)
    train = b.train_loader(8, seed=0, workers=0)
    assert len(train) == 2  # full batches only
    xb, yb = next(iter(train))
    assert xb.shape == (8, 3, 32, 32) and xb.dtype == torch.float32 and yb.dtype == torch.long
    assert xb.min() < -0.5 and xb.max() > 0.5  # normalised, not [0, 1]
    vx, vy = next(iter(b.val_loader(6, workers=0)))
    assert vx.shape == (6, 3, 32, 32) and sorted(vy.tolist()) == [0, 0, 1, 1, 2, 2]
    vx2, _ = next(iter(b.val_loader(6, workers=0)))
    assert torch.equal(vx, vx2)  # val transform is deterministic
    # augment off: training images get the deterministic transform too; on: timm's random-resized crop etc.
    plain = [next(iter(b.train_loader(8, seed=s, augment=False, workers=0)))[0][0] for s in (0, 0)]
    assert torch.equal(*plain)
    torch.manual_seed(1)
    one = next(iter(b.train_loader(8, seed=0, augment=True, workers=0)))[0]
    torch.manual_seed(2)
    two = next(iter(b.train_loader(8, seed=0, augment=True, workers=0)))[0]
    assert not torch.equal(one, two)  # same images in the same order, different random augmentation


def test_imagefolder_errors(tmp_path):
    """No root, no val/, empty class folders and mismatched classes are UserErrors naming the path."""
    with pytest.raises(UserError, match="needs --data-root"):
        load_dataset("imagefolder")
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match=r"no train/|no class folders"):
        load_dataset("imagefolder", str(tmp_path))
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "train" / "a" / "0.png")
    with pytest.raises(UserError, match=r"no val/ folder"):
        load_dataset("imagefolder", str(tmp_path))
    (tmp_path / "val" / "b").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "val" / "b" / "0.png")
    with pytest.raises(UserError, match=r"classes \['a'\] differ from val/ classes \['b'\]"):
        load_dataset("imagefolder", str(tmp_path))
