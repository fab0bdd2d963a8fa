"""An example user stem: overlapping patches (one strided conv with a kernel larger than its stride).

Follows the stem contract: OverlapPatchStem(in_chans, embed_dim, patch_size, **options) maps B×C×H×W to
B×embed_dim×(H/p)×(W/p). Compare it against the built-in baselines with

    robustbench-vit compare --stem examples/overlap_stem.py:OverlapPatchStem
"""

import torch
from torch import nn


class OverlapPatchStem(nn.Module):
    """A k×k stride-p conv (k > p, so neighbouring patches overlap), then BatchNorm."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, kernel_size: int | None = None):
        """Kernel k (default 1.5·p + 1), stride p, padding that keeps exactly H/p × W/p outputs."""
        super().__init__()
        k = kernel_size or patch_size * 3 // 2 + 1  # micro (p=4): 7; ImageNet sizes (p=16): 25
        self.proj = nn.Conv2d(in_chans, embed_dim, k, stride=patch_size, padding=(k - patch_size + 1) // 2)
        self.norm = nn.BatchNorm2d(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B×C×H×W → B×D×H/p×W/p."""
        return self.norm(self.proj(x))
