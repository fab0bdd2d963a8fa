"""Batch loaders: an in-memory tensor loader with tensor augmentation, and a seeded DataLoader wrapper."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffling and augmentation (independent of how many epochs ran before)."""
    return (seed * 1_000_003 + epoch * 7_919 + 12_345) % (2**63)


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """A DDP rank's own seed for one epoch's augmentation (and DataLoader worker seeds)."""
    return (epoch_seed(seed, epoch) + 1 + rank) % (2**63)


def rank_slice(idx: Tensor, rank: int, world: int, full_batch: int | None = None) -> Tensor:
    """This rank's strided share of one global batch; cut to full_batch // world images when full_batch is given."""
    return idx[rank::world][:full_batch // world if full_batch else None]


class ShardedBatches(torch.utils.data.Sampler):
    """DDP batch sampler: global batches of one permutation shared by all ranks, each cut to this rank's slice."""

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, drop_last: bool, rank: int, world: int):
        """Batch `n` indices; `generator` is reseeded per epoch by the owner."""
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last and n > batch_size
        self.rank, self.world, self.generator = rank, world, torch.Generator()

    def __len__(self) -> int:
        """Global batches per epoch."""
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        """Yield this rank's index lists, one per global batch."""
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        for i in range(len(self)):
            idx = rank_slice(order[i * self.batch_size:(i + 1) * self.batch_size], self.rank, self.world,
                             self.batch_size if self.drop_last else None)
            if len(idx):
                yield idx.tolist()


def draw_augmentation(g: torch.Generator, steps: int, batch: int, pad: int) -> Tensor:
    """One epoch's augmentation numbers, all drawn at once on the host: steps×batch×3 of (dy, dx) crop offsets in
    [0, 2·pad] and a flip bit (probability 1/2) per image slot. Moved to the data's device in one copy, so no
    training step waits on the host; the same numbers (and images) on every device."""
    shifts = torch.randint(0, 2 * pad + 1, (steps, batch, 2), generator=g)
    flips = (torch.rand(steps, batch, 1, generator=g) < 0.5).long()
    return torch.cat([shifts, flips], 2)


def random_crop(x: Tensor, pad: int, shifts: Tensor) -> Tensor:
    """Translate: pad each image by `pad` (edge-replicate) and crop back at its offset `shifts[i]` = (dy, dx)."""
    b, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    rows = (shifts[:, 0, None] + torch.arange(h, device=x.device))[:, :, None]  # B×H×1
    cols = (shifts[:, 1, None] + torch.arange(w, device=x.device))[:, None, :]  # B×1×W
    idx = torch.arange(b, device=x.device)[:, None, None]
    return xp.permute(0, 2, 3, 1)[idx, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_flip(x: Tensor, flips: Tensor) -> Tensor:
    """Mirror the images whose `flips` entry is 1 horizontally."""
    return torch.where(flips.bool()[:, None, None, None], x.flip(3), x)


class TensorLoader:
    """Batches of in-memory tensors (on any device): seeded per-epoch shuffling, then crop / flip on the device.

    Per epoch the host sends the permutation and the augmentation numbers once; nothing per step.
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 pad: int = 0, flip: bool = False, drop_last: bool = False, rank: int = 0, world: int = 1):
        """Hold the tensors and the batching / augmentation settings.

        With `world` > 1 (DDP) `batch_size` is the global batch: every rank draws the same permutation and
        takes the rank-strided slice of each global batch (batch_size // world images with drop_last).
        """
        self.x, self.y, self.batch_size, self.shuffle, self.seed = x, y, batch_size, shuffle, seed
        self.pad, self.flip, self.drop_last, self.epoch = pad, flip, drop_last and len(x) > batch_size, 0
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffling and augmentation the next iteration draws."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield (images, labels) batches on the tensors' device."""
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        n = len(self.x)
        order = torch.randperm(n, generator=g).to(self.x.device) if self.shuffle else None
        if self.world > 1:  # the permutation stays shared; augmentation draws its own numbers per rank
            g = torch.Generator().manual_seed(rank_seed(self.seed, self.epoch, self.rank))
            order = torch.arange(n, device=self.x.device) if order is None else order
        draws = (draw_augmentation(g, len(self), self.batch_size, self.pad).to(self.x.device)
                 if self.pad or self.flip else None)
        for i in range(len(self)):
            sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
            idx = order[sl] if order is not None else sl
            if self.world > 1:
                idx = rank_slice(idx, self.rank, self.world, self.batch_size if self.drop_last else None)
                if not len(idx):
                    continue
            xb, yb = self.x[idx], self.y[idx]
            if self.pad:
                xb = random_crop(xb, self.pad, draws[i, :len(yb), :2])
            if self.flip:
                xb = random_flip(xb, draws[i, :len(yb), 2])
            yield xb, yb


class FolderLoader:
    """A torch DataLoader whose shuffling (and worker seeds) are reseeded from (seed, epoch)."""

    def __init__(self, dataset, batch_size: int, *, shuffle: bool = False, seed: int = 0, workers: int = 0,
                 drop_last: bool = False, pin_memory: bool = False, rank: int = 0, world: int = 1):
        """Wrap `dataset` in a DataLoader driven by a private generator (world > 1: a ShardedBatches sampler)."""
        self.seed, self.epoch, self.generator, self.rank = seed, 0, torch.Generator(), rank
        self.sampler = ShardedBatches(len(dataset), batch_size, shuffle=shuffle, drop_last=drop_last,
                                      rank=rank, world=world) if world > 1 else None
        batching = {"batch_sampler": self.sampler} if self.sampler else {
            "batch_size": batch_size, "shuffle": shuffle, "drop_last": drop_last and len(dataset) > batch_size}
        self.loader = torch.utils.data.DataLoader(dataset, num_workers=workers, generator=self.generator,
                                                  pin_memory=pin_memory, **batching)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffling the next iteration draws."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Number of batches per epoch."""
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield (images, labels) batches on the CPU."""
        if self.sampler is None:
            self.generator.manual_seed(epoch_seed(self.seed, self.epoch))
        else:  # shared shuffling, own worker seeds per rank
            self.sampler.generator.manual_seed(epoch_seed(self.seed, self.epoch))
            self.generator.manual_seed(rank_seed(self.seed, self.epoch, self.rank))
        return iter(self.loader)
