"""fashion_mnist on the real IDX files of Debian's dataset-fashion-mnist (CI installs it); fake IDX files only for
the malformed-input cases, written to tmp_path."""

import gzip
import os
import shutil
import struct

import numpy as np
import pytest
import torch

from robustbench_vit.cli import main
from robustbench_vit.data import load_dataset
from robustbench_vit.data.fashion_mnist import DEFAULT_ROOT, FIX, SPLITS, resized_tensors, subset_indices
from robustbench_vit.errors import UserError
from robustbench_vit.models import ModelSpec
from robustbench_vit.train import run_trial
from robustbench_vit.train.checkpoint import config_key
from robustbench_vit.train.config import TrialConfig

TRAIN_IMAGES, TRAIN_LABELS = SPLITS["train"][:2]
TEST_IMAGES, TEST_LABELS = SPLITS["test"][:2]
PINNED_10 = [9416, 11774, 16146, 17123, 24513, 39660, 43108, 43968, 45329, 58926]  # one per class


@pytest.fixture(scope="module")
def real():
    """Debian's files are there (skip without them; under CI=true fail: CI installs dataset-fashion-mnist)."""
    if not (DEFAULT_ROOT / f"{TRAIN_IMAGES}.gz").is_file():
        why = f"{DEFAULT_ROOT}: no Fashion-MNIST files (apt-get install dataset-fashion-mnist)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    return DEFAULT_ROOT


def train_labels(real) -> np.ndarray:
    """The 60,000 official training labels, as the loader reads them."""
    return resized_tensors(str(real.resolve()), 16)[1].numpy()


def test_real_files_load_official_split_balanced_and_normalised(real):
    """Debian's files: 60,000 train / 10,000 official test images at 1×16×16, 10 balanced classes, normalised."""
    b = load_dataset("fashion_mnist")
    assert (b.name, b.num_classes, b.in_chans, b.img_size, b.pad, b.flip) == ("fashion_mnist", 10, 1, 16, 0, True)
    assert b.train_x.shape == (60_000, 1, 16, 16) and b.val_x.shape == (10_000, 1, 16, 16)
    assert b.train_x.dtype == torch.float32 and b.train_y.dtype == torch.long
    assert b.train_y.bincount().tolist() == [6000] * 10 and b.val_y.bincount().tolist() == [1000] * 10
    assert abs(b.train_x.mean().item()) < 1e-4 and abs(b.train_x.std().item() - 1) < 1e-4
    native = load_dataset("fashion_mnist", img_size=28)
    assert native.train_x.shape == (60_000, 1, 28, 28) and torch.equal(native.val_y, b.val_y)


def test_torchvision_raw_layout_with_plain_files(real, tmp_path):
    """--data-root DIR with DIR/FashionMNIST/raw/ holding un-gzipped files gives the same tensors."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (TEST_IMAGES, TEST_LABELS, TRAIN_LABELS):
        (raw / name).write_bytes(gzip.decompress((real / f"{name}.gz").read_bytes()))
    shutil.copy(real / f"{TRAIN_IMAGES}.gz", raw)  # gzip and plain may mix
    b, ref = load_dataset("fashion_mnist", str(tmp_path), train_subset=1000), load_dataset("fashion_mnist",
                                                                                         train_subset=1000)
    assert torch.equal(b.train_x, ref.train_x) and torch.equal(b.val_x, ref.val_x) and torch.equal(b.val_y, ref.val_y)


def test_subset_is_stratified_fixed_and_nested(real):
    """train_subset k: k images, balanced to ±1 per class, the same every time, smaller ones inside larger ones."""
    labels = train_labels(real)
    subsets = {k: subset_indices(labels, k) for k in (10, 500, 1234, 5000, 60_000)}
    for k, idx in subsets.items():
        counts = np.bincount(labels[idx], minlength=10)
        assert len(idx) == len(set(idx.tolist())) == k and counts.max() - counts.min() <= 1
    assert all(set(subsets[a]) <= set(subsets[b]) for a, b in [(10, 500), (500, 1234), (1234, 5000), (5000, 60_000)])
    assert np.array_equal(subsets[500], subset_indices(labels, 500))
    assert subsets[10].tolist() == PINNED_10  # fixed across processes and versions: a change would change studies
    b = load_dataset("fashion_mnist", train_subset=500)
    assert b.train_x.shape == (500, 1, 16, 16) and b.train_y.bincount().tolist() == [50] * 10
    assert b.val_x.shape == (10_000, 1, 16, 16)  # the official test set whatever the subset
    assert abs(b.train_x.mean().item()) < 1e-4 and abs(b.train_x.std().item() - 1) < 1e-4  # the subset's own stats


def test_subset_size_is_checked():
    """Too small for TrialConfig, too large for the data, or given to a dataset without subsets: one line each."""
    with pytest.raises(ValueError, match="greater than or equal to 10"):
        TrialConfig(model=ModelSpec.from_name("vit_c_micro"), dataset="fashion_mnist", train_subset=5)
    with pytest.raises(UserError, match="train_subset 70000 is out of range") as e:
        load_dataset("fashion_mnist", train_subset=70_000)
    with pytest.raises(UserError, match="train_subset 100 is for fashion_mnist only; dataset 'digits'") as e:
        load_dataset("digits", train_subset=100)
    assert "\n" not in str(e.value)


def test_train_subset_unset_keeps_old_checkpoints_resumable():
    """A config without train_subset has the checkpoint key it had before the field existed."""
    spec = ModelSpec.from_name("vit_c_micro")
    assert "train_subset" not in config_key(TrialConfig(model=spec))
    assert config_key(TrialConfig(model=spec, dataset="fashion_mnist", train_subset=500))["train_subset"] == 500


def test_tiny_real_training_run_beats_chance(real):
    """vit_c_micro, 500 real images, one epoch: completes, clearly below the 90% chance error."""
    config = TrialConfig(model=ModelSpec.from_name("vit_c_micro"), dataset="fashion_mnist", train_subset=500,
                         epochs=1, batch_size=32, threads=1, device="cpu")
    result = run_trial(config)
    assert result.status == "complete" and result.num_classes == 10
    assert result.final_error < 85, result


def idx(magic: int, shape: tuple[int, ...], data: bytes) -> bytes:
    """An IDX file: big-endian magic and dims, then the bytes."""
    return struct.pack(f">{1 + len(shape)}I", magic, *shape) + data


def folder_with(tmp_path, real, name: str, content: bytes | None):
    """A copy of the real folder with file `name` replaced by `content` (plain, not gzip; None: removed)."""
    folder = tmp_path / "fm"
    folder.mkdir()
    for f in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS):
        if f != name:
            (folder / f"{f}.gz").symlink_to(real / f"{f}.gz")
    if content is not None:
        (folder / name).write_bytes(content)
    return folder


def real_labels(real, name: str) -> np.ndarray:
    """A real label file's labels (for editing)."""
    return np.frombuffer(gzip.decompress((real / f"{name}.gz").read_bytes()), np.uint8, offset=8).copy()


@pytest.mark.parametrize("case", ["wrong magic", "truncated images", "truncated gzip", "label count",
                                  "label range", "missing file", "not 28x28"])
def test_malformed_files_are_one_line_naming_the_file_and_the_fix(real, tmp_path, case):
    """Each broken input: a one-line UserError naming the file, what is wrong and the fix."""
    labels = real_labels(real, TRAIN_LABELS)
    bad_label = labels.copy()
    bad_label[123] = 10
    name, content, what = {
        "wrong magic": (TRAIN_IMAGES, idx(2049, (60_000, 28, 28), b""), "magic number 2049 is not 2051"),
        "truncated images": (TRAIN_IMAGES, idx(2051, (60_000, 28, 28), bytes(1000)), "truncated"),
        "truncated gzip": (TRAIN_IMAGES, (real / f"{TRAIN_IMAGES}.gz").read_bytes()[:100_000], "corrupt gzip"),
        "label count": (TRAIN_LABELS, idx(2049, (59_999,), labels[:-1].tobytes()), "59999 labels but"),
        "label range": (TRAIN_LABELS, idx(2049, (60_000,), bad_label.tobytes()), "label 10 out of range 0..9"),
        "missing file": (TEST_LABELS, None, "missing"),
        "not 28x28": (TEST_IMAGES, idx(2051, (10_000, 32, 32), bytes(10_000 * 1024)), "are 32×32"),
    }[case]
    folder = folder_with(tmp_path, real, name, content)
    with pytest.raises(UserError) as e:
        load_dataset("fashion_mnist", str(folder))
    msg = str(e.value)
    assert "\n" not in msg and str(folder / name) in msg and what in msg and msg.endswith(FIX), msg


def test_official_count_is_checked(real, tmp_path):
    """A consistent but smaller test set is not the official one: named, with the count it should have."""
    folder = folder_with(tmp_path, real, TEST_LABELS, idx(2049, (10,), bytes(10)))
    (folder / f"{TEST_IMAGES}.gz").unlink()
    (folder / TEST_IMAGES).write_bytes(idx(2051, (10, 28, 28), bytes(10 * 784)))
    with pytest.raises(UserError, match=f"{TEST_IMAGES}: 10 images, the official test set has 10000"):
        load_dataset("fashion_mnist", str(folder))


def test_missing_or_empty_folder(tmp_path):
    """A data root that does not exist, or holds no Fashion-MNIST files: the folder and the fix, one line."""
    for root, what in ((tmp_path / "none", "no such folder"), (tmp_path, "no Fashion-MNIST files")):
        with pytest.raises(UserError) as e:
            load_dataset("fashion_mnist", str(root))
        assert str(e.value).startswith(f"{root}: {what}") and "\n" not in str(e.value)
        assert "apt-get install dataset-fashion-mnist" in str(e.value) and "--data-root" in str(e.value)


def test_cli_train_with_an_empty_data_root_exits_2_with_one_line(tmp_path, capsys):
    """`robustbench-vit train --dataset fashion_mnist --data-root EMPTY`: exit 2, one stderr line, nothing written."""
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["train", "--dataset", "fashion_mnist", "--data-root", str(empty), "--trial-dir", str(tmp_path / "t"),
            "--epochs", "1", "--json"]
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and str(empty) in lines[0] and "apt-get install dataset-fashion-mnist" in lines[0]
    assert captured.out == "" and not (tmp_path / "t").exists()
    assert main(["train", "--train-subset", "100", "--trial-dir", str(tmp_path / "t"), "--epochs", "1"]) == 2
    assert "train_subset 100 is for fashion_mnist only" in capsys.readouterr().err
