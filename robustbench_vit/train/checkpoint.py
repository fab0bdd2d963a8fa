"""Trial checkpoints: one `last.pt` per trial folder, written atomically, with every RNG state."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from robustbench_vit.errors import UserError
from robustbench_vit.train.config import TrialConfig

# fields that may change between a run and its resumption without changing the result's meaning
RUNTIME_FIELDS = {"device", "threads", "compile", "amp", "extra"}


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global RNG state, as tensors and plain values (loadable with weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Restore what rng_state() captured."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def config_key(config: TrialConfig) -> dict:
    """The config fields a checkpoint must agree on to be resumed."""
    return config.model_dump(mode="json", exclude=RUNTIME_FIELDS)


def save_checkpoint(path: Path, state: dict) -> None:
    """Write `state` to `path` atomically (a temporary file, then os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path | None, config: TrialConfig) -> dict | None:
    """The checkpoint at `path` if there is one (UserError when it belongs to a different config)."""
    if path is None or not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("config") != config_key(config):
        diff = sorted(k for k, v in config_key(config).items() if state.get("config", {}).get(k) != v)
        raise UserError(f"{path}: checkpoint of a different trial config (fields differ: {', '.join(diff)}); "
                        f"use another trial folder or delete it")
    return state
