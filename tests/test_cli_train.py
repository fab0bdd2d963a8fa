"""`robustbench-vit train`: JSON output, per-epoch lines, resume, and one-line errors with exit code 2."""

import json
import os
import subprocess
import sys

import pytest

from robustbench_vit.cli import main

KEYS = {"final_error", "min_error", "status", "epochs", "seconds", "resumed_epochs", "first_step_seconds",
        "step_seconds", "device"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process with one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "robustbench_vit.cli", "train", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_json_is_the_only_stdout():
    """--json: stdout is exactly one JSON object with its keys; progress lines go to stderr."""
    p = run_cli("--epochs", "2", "--threads", "1", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert set(out) == KEYS and out["status"] == "complete" and out["epochs"] == 2
    assert 0 <= out["min_error"] <= out["final_error"] <= 100 and out["seconds"] > 0
    assert "epoch   2/2" in p.stderr


def test_epoch_lines_final_error_and_resume(tmp_path, capsys):
    """Human output: a line per epoch and the final error; the same --trial-dir again returns the stored result."""
    args = ["train", "--epochs", "2", "--threads", "1", "--trial-dir", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "epoch   1/2" in out and "epoch   2/2" in out and "vit_c_micro: complete, final error" in out
    assert (tmp_path / "last.pt").is_file()
    assert main(args) == 0
    again = capsys.readouterr().out
    assert "epoch" not in again.split("final error")[0]  # nothing retrained
    assert again.strip().splitlines()[-1] == out.strip().splitlines()[-1]


@pytest.mark.parametrize("args, bad, allowed", [
    (["--model", "vit_q_micro"], "'vit_q_micro'", "vit_c_micro"),
    (["--dataset", "mnist"], "'mnist'", "cifar10, cifar100, digits, fashion_mnist, imagefolder"),
    (["--optimizer", "adam"], "'adam'", "'adamw' or 'sgd'"),
    (["--lr", "0"], "lr 0.0", "greater than 0"),
    (["--lr", "-0.1"], "lr -0.1", "greater than 0"),
    (["--device", "tpu"], "'tpu'", "auto, cpu, cuda"),
])
def test_bad_input_is_one_line_and_exit_2(args, bad, allowed, capsys, tmp_path):
    """Unknown names and bad values: exit 2, one stderr line naming the bad value and the allowed ones."""
    assert main(["train", "--trial-dir", str(tmp_path / "t"), *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("robustbench-vit: error:") and "Traceback" not in captured.err
    assert bad in lines[0] and allowed in lines[0] and captured.out == ""
    assert not (tmp_path / "t").exists()


def test_missing_data_root_in_a_real_process(tmp_path):
    """CIFAR without its folder: exit 2, one line naming the path and the expected files, no traceback."""
    p = run_cli("--model", "vit_c_tiny", "--dataset", "cifar10", "--data-root", str(tmp_path / "none"), "--json")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().count("\n") == 0 and str(tmp_path / "none") in p.stderr
    assert "cifar-10-batches-py" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_acceptance_conv_stem_under_15_and_patchify_clearly_worse():
    """The README's command: vit_c_micro on digits for 10 epochs ends under 15% error; vit_p_micro is worse."""
    c = json.loads(run_cli("--model", "vit_c_micro", "--dataset", "digits", "--epochs", "10", "--json").stdout)
    p = json.loads(run_cli("--model", "vit_p_micro", "--dataset", "digits", "--epochs", "10", "--json").stdout)
    assert c["status"] == p["status"] == "complete" and c["epochs"] == p["epochs"] == 10
    assert c["final_error"] < 15 and p["final_error"] > c["final_error"] + 10
