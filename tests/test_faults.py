"""The fault suite's smallest real run: `kill -9` of a training process inside checkpoint writes, then resumed
(benchmarks/faults.py --small; the other scenarios run at small counts in test_study_run.py (killed workers and
study runs), test_study_postgres.py (a server restart) and test_study_slurm.py (preemption))."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "faults.py"


@pytest.mark.slow
def test_kills_inside_checkpoint_writes_lose_nothing_and_resume_bit_for_bit():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--small", "--only", "checkpoint"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = proc.stdout.strip().splitlines()[-1].split()
    planned, finished, lost, twice, resumed, identical, errors = map(int, row[5:12])
    assert (planned, finished, lost, twice, errors) == (1, 1, 0, 0, 0), proc.stdout
    assert resumed == identical == 1, proc.stdout  # resumed from a checkpoint, same bits as uninterrupted
    assert "2 kills, 2 inside a write" in proc.stdout, proc.stdout


def test_unknown_scenario_is_one_line():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--only", "nope"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "--only 'nope': allowed kill, postgres" in proc.stderr.splitlines()[-1]
