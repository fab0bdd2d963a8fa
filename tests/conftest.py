"""Shared test setup: one torch thread per test process keeps runs fast and deterministic on 2 cores."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
