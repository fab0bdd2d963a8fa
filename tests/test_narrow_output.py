"""Output that fits where it goes: `study list` and `reproduce` written to a file (no terminal, COLUMNS unset) read
cleanly at 80 columns, their --json parses, and progress lines in a log keep their times whole."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from robustbench_vit.analysis.claims import STATUSES

SMALL = ["--set", "design.points=2", "--set", "train.epochs=1", "--set", "reference=null"]  # the two ViTs only


def _logged(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run a command with stdout and stderr going to files, as in a batch job's log; (exit code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"OMP_NUM_THREADS": "1"}
    out, err = cwd / "stdout.log", cwd / "stderr.log"
    with out.open("w") as o, err.open("w") as e:
        code = subprocess.run([sys.executable, "-m", "robustbench_vit.cli", *args], cwd=cwd, env=env, stdout=o,
                              stderr=e, stdin=subprocess.DEVNULL, timeout=600).returncode
    return code, out.read_text(), err.read_text()


def _long(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > 80]


def test_study_list_in_a_log_fits_80_columns_and_json_parses(tmp_path):
    code, out, err = _logged(["study", "list"], tmp_path)
    assert code == 0 and _long(out) == [], err
    assert re.search(r"^lr_wd_stability: 72 trials \(vit_p_micro, vit_c_micro, regnety_micro\); presets:$", out, re.M), out
    code, out, _ = _logged(["study", "list", "--json"], tmp_path)
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["lr_wd_stability"]["trials"] == 72 and "quick" in rows["lr_wd_stability"]["presets"]


@pytest.mark.slow
def test_reproduce_in_a_log_fits_80_columns_and_json_parses(tmp_path):
    args = ["reproduce", "--claims", "adamw_lr_wd", *SMALL, "--workers", "1", "--format", "html"]
    code, out, err = _logged(args, tmp_path)
    assert code == 0, err
    assert _long(out) == [] and "Does the paper hold?" in out, out
    status = re.search(r"^adamw_lr_wd \(micro\): (\w+)$", out, re.M)
    assert status and status[1] in STATUSES, out
    assert re.search(r"^  ours: .+\n(        .+\n)*  test: p .+, power ", out, re.M), out
    assert re.search(r"^html: reports/reproduce-set-[0-9a-f]{8}/scorecard.html$", out, re.M), out
    progress = re.findall(r"^\d+:\d\d:\d\d ETA (?:\d+:\d\d:\d\d|-)  lr_wd_stability-set-[0-9a-f]{8}: (\d)/4 trials "
                          r"finished$", err, re.M)
    assert progress[0] == "0" and progress[-1] == "4" and "…" not in err, err  # times whole, nothing cut
    code, out, err = _logged([*args, "--json"], tmp_path)
    card = json.loads(out)
    assert code == 0 and "0 ran now" in err
    assert [(c["claim"], c["size"]) for c in card["claims"]] == [("adamw_lr_wd", "micro")]
    assert card["claims"][0]["status"] == status[1]
    assert card["files"]["html"].endswith("scorecard.html") and card["preset"] == "default"
