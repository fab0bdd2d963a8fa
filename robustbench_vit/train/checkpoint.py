"""Trial checkpoints: `last.pt` per trial folder (and `prev.pt`, the one before), written atomically.

A writer saves to a temporary file of its own (two workers on one trial never share one), then renames it over
`last.pt` after moving the old `last.pt` to `prev.pt`; a reader that cannot load `last.pt` falls back to
`prev.pt`. No RNG state is stored: every epoch reseeds from (seed, epoch), see `train.loop`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import uuid
from pathlib import Path

import numpy as np
import torch

from robustbench_vit.errors import UserError
from robustbench_vit.train.config import TrialConfig

# fields that may change between a run and its resumption without changing the result's meaning; of these, the
# ones that change the arithmetic (device type, bf16 autocast, torch.compile) are checked by `runtime_key`;
# stop_hopeless only decides whether a trial at chance stops (a checkpoint from before the rule existed resumes)
RUNTIME_FIELDS = {"device", "threads", "compile", "amp", "extra", "stop_hopeless"}
PREVIOUS = "prev.pt"
# fields added after checkpoints were first written, whose default (None) trains as before: left out of the key
# while at that default, so older checkpoints still resume
ADDED_FIELDS = {"train_subset"}
log = logging.getLogger(__name__)


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def config_key(config: TrialConfig) -> dict:
    """The config fields a checkpoint must agree on to be resumed (an ADDED_FIELDS one only when set)."""
    key = config.model_dump(mode="json", exclude=RUNTIME_FIELDS)
    return {k: v for k, v in key.items() if k not in ADDED_FIELDS or v is not None}


def runtime_key(config: TrialConfig, device: torch.device) -> dict:
    """How the arithmetic runs: device type, and bf16 autocast and torch.compile as they apply (CUDA only)."""
    cuda = device.type == "cuda"
    return {"device": device.type, "amp": bool(config.amp and cuda), "compile": bool(config.compile and cuda)}


def save_checkpoint(path: Path, state: dict) -> None:
    """Write `state` to `path` atomically through a temporary file of this writer's own; keep the old as prev.pt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        torch.save(state, tmp)
        # another writer of this folder may move last.pt between a check and the move: a missing one is fine
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, path.with_name(PREVIOUS))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load(path: Path) -> dict | None:
    """The checkpoint at `path`, or None when it is missing or cannot be read (torn, truncated, not ours)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 — any unreadable file: fall back to the previous one
        log.warning("%s cannot be loaded (%s: %s); falling back to %s", path, type(e).__name__, e, PREVIOUS)
        return None
    return state if isinstance(state, dict) and "config" in state else None


def load_checkpoint(path: Path | None, config: TrialConfig, runtime: dict | None = None) -> dict | None:
    """The newest loadable checkpoint of the trial folder (`last.pt`, else `prev.pt`), or None.

    UserError when it belongs to a different config, or was trained with other arithmetic (`runtime`: device
    type, amp, compile): resuming would mix two kinds of run in one result.
    """
    if path is None:
        return None
    state = _load(path) or _load(path.with_name(PREVIOUS))
    if state is None:
        return None
    stored = {k: v for k, v in (state.get("config") or {}).items() if k not in RUNTIME_FIELDS}
    if stored != config_key(config):
        diff = sorted(k for k in {*stored, *config_key(config)} if stored.get(k) != config_key(config).get(k))
        raise UserError(f"{path}: checkpoint of a different trial config (fields differ: {', '.join(diff)}); "
                        f"use another trial folder or delete it")
    was = state.get("runtime")
    if runtime is not None and was is not None and was != runtime:
        fmt = ", ".join
        raise UserError(f"{path}: checkpoint trained with {fmt(f'{k}={v}' for k, v in was.items())}, this run has "
                        f"{fmt(f'{k}={v}' for k, v in runtime.items())}; resume with the same device, amp and "
                        f"compile, or use another trial folder")
    return state
