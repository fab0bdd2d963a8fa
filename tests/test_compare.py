"""`compare`: a user stem runs on exactly the baselines' stored trial points, then the report ranks all three."""

import hashlib
import json
from pathlib import Path

import optuna
import pytest

from robustbench_vit.analysis.frame import load_results
from robustbench_vit.cli import main
from robustbench_vit.commands.compare import compare_stem, contender, default_name, stem_verdicts
from robustbench_vit.store import Results
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.options import RunOptions

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "overlap_stem.py") + ":OverlapPatchStem"

STUDY = """\
description: compare test, 3 lr points, 2 epochs
models: [vit_p_micro, vit_c_micro]
dataset: digits
train: {epochs: 2, batch_size: 128, weight_decay: 0.05, threads: 1}
space:
  lr: {values: [3.0e-4, 1.0e-3, 3.0e-3]}
design: {kind: grid, seeds: 1}
"""

BROKEN = '''
from torch import nn

class HalfRes(nn.Module):
    """Downsamples by p/2 only: the wrong token grid."""
    def __init__(self, in_chans, embed_dim, patch_size):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size // 2, stride=patch_size // 2)
    def forward(self, x):
        return self.proj(x)
'''

BLIND = '''
import torch
from torch import nn

class Blind(nn.Module):
    """Right shape, finite, trainable, and blind: its tokens do not depend on the image."""
    def __init__(self, in_chans, embed_dim, patch_size):
        super().__init__()
        self.p = patch_size
        self.tokens = nn.Parameter(torch.randn(1, embed_dim, 1, 1))
    def forward(self, x):
        return self.tokens.expand(len(x), -1, x.shape[2] // self.p, x.shape[3] // self.p) + 0 * x.mean()
'''


def _finished(url: str, name: str) -> dict[str, int]:
    """Finished trials per Optuna study of a study, read with plain Optuna."""
    return {s: sum(t.state.is_finished() for t in optuna.load_study(study_name=s, storage=url).trials)
            for s in optuna.get_all_study_names(url) if s.startswith(f"{name}/")}


@pytest.mark.slow
def test_compare_runs_only_the_new_stem_and_reports_three_models(tmp_path, capsys):
    study = tmp_path / "cmp.yaml"
    study.write_text(STUDY)
    runs, out = tmp_path / "runs", tmp_path / "report"
    assert main(["study", "run", str(study), "--runs-dir", str(runs), "--json"]) == 0
    url = f"sqlite:///{runs / 'cmp' / 'study.db'}"
    baseline_trials = {s: n for s, n in _finished(url, "cmp").items()}
    assert baseline_trials == {"cmp/vit_p_micro": 3, "cmp/vit_c_micro": 3}
    printed = capsys.readouterr()
    ran = json.loads(printed.out)  # stdout holds the JSON alone; what ran and the headlines go to stderr
    assert ran["study"] == "cmp" and ran["trials"]["done"] == ran["trials"]["total"] == 6 and ran["ran"] == 6
    assert ran["next"].startswith("robustbench-vit report cmp") and "next: robustbench-vit report cmp" in printed.err
    (v,) = ran["verdicts"]
    assert v["comparison"] == "vit_c_micro vs vit_p_micro" and v["line"] in " ".join(printed.err.split())

    assert main(["compare", "--stem", EXAMPLE, "--study", str(study), "--runs-dir", str(runs),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "3 trials ran now" in printed.err  # only the new stem's: the 6 baseline trials were reused
    assert _finished(url, "cmp") == {**baseline_trials, "cmp/overlap_patch_stem_micro": 3}

    df = load_results("cmp", Results.of(runs))
    points = {m: sorted(zip(g["point"], g["seed"], g["lr"])) for m, g in df.groupby("model")}
    assert points["overlap_patch_stem_micro"] == points["vit_p_micro"] == points["vit_c_micro"]  # paired
    html = (out / "report.html").read_text()
    for model in ("vit_p_micro", "vit_c_micro", "overlap_patch_stem_micro"):
        assert model in html
    assert "overlap_patch_stem_micro vs vit_c_micro" in html
    digest = hashlib.sha256(Path(EXAMPLE.rpartition(":")[0]).read_bytes()).hexdigest()[:12]
    assert "stem source of overlap_patch_stem_micro" in html and digest in html  # which file the trials trained

    found = stem_verdicts(load_spec(str(study)), RunOptions(runs_dir=runs), [contender(EXAMPLE, size="micro")],
                          f"compare --stem {EXAMPLE} --study {study}")  # the command compare gives (`again`)
    lines = [v.line for v in found]
    assert len(lines) == 2 and all(len(x) <= 100 for x in lines), lines  # one line of ≤ 100 characters each
    flat = " ".join(printed.out.split())
    assert all(line in flat for line in lines) and {v.baseline for v in found} == {"vit_p_micro", "vit_c_micro"}

    # Again, as JSON: nothing left to run; the files and both verdicts with their numbers
    assert main(["compare", "--stem", EXAMPLE, "--study", str(study), "--runs-dir", str(runs), "--out", str(out),
                 "--json"]) == 0
    printed = capsys.readouterr()
    found = json.loads(printed.out)
    assert "0 trials ran now" in printed.err and found["stems"] == ["overlap_patch_stem_micro"]
    assert found["files"] == {"html": str(out / "report.html")}
    assert [v["line"] for v in found["verdicts"]] == lines
    assert {v["baseline"] for v in found["verdicts"]} == {"vit_p_micro", "vit_c_micro"}

    # Again: nothing left to run for anyone.
    _, summary = compare_stem(EXAMPLE, study=str(study), run=RunOptions(runs_dir=runs), progress=False)
    assert summary.ran == 0 and summary.done == 9

    # A stem that passes every check but cannot learn (its output ignores the image) trains to chance at every
    # setting: its Δerror is ≈ 0 everywhere, which once read "more robust than both baselines"
    (tmp_path / "blind.py").write_text(BLIND)
    assert main(["compare", "--stem", f"{tmp_path / 'blind.py'}:Blind", "--study", str(study), "--runs-dir",
                 str(runs), "--out", str(tmp_path / "blind_report")]) == 0
    printed = capsys.readouterr().out
    heads = [ln for ln in printed.splitlines() if not ln.startswith("    ")]  # the headlines end the output
    assert heads[-2].startswith("blind_micro vs vit_p_micro: ") and heads[-1].startswith("blind_micro vs vit_c_micro")
    flat = " ".join(printed.split())  # each wrapped at 80 columns
    for base in ("vit_p_micro", "vit_c_micro"):
        line = flat[flat.index(f"blind_micro vs {base}: "):].split(".")[0]
        assert line == f"blind_micro vs {base}: blind_micro did not learn (never beat chance): no robustness to compare"
    assert all(len(ln) <= 80 for ln in printed.splitlines() if not ln.startswith(("html:", "pdf:")))


def test_broken_stem_is_refused_before_anything_is_written(tmp_path, capsys):
    study = tmp_path / "cmp.yaml"
    study.write_text(STUDY)
    stem = tmp_path / "half.py"
    stem.write_text(BROKEN)
    runs = tmp_path / "runs"
    assert main(["compare", "--stem", f"{stem}:HalfRes", "--study", str(study), "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "output shape (2, 64, 8, 8), expected" in err and "(2, 64, 4, 4)" in err
    assert not runs.exists()
    assert main(["compare", "--stem", f"{stem}:Nope", "--study", str(study), "--runs-dir", str(runs)]) == 2
    assert "no torch.nn.Module class named 'Nope'" in capsys.readouterr().err
    assert main(["compare", "--stem", EXAMPLE, "--study", str(study), "--runs-dir", str(runs),
                 "--options", "{kernel"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["compare", "--stem", EXAMPLE, "--study", str(study), "--runs-dir", str(runs), "--format", "pdff"]) == 2
    assert "allowed formats are html, pdf" in capsys.readouterr().err
    assert not runs.exists()


def test_default_name_and_flop_matched_summary():
    assert default_name("x.py:OverlapPatchStem", "micro") == "overlap_patch_stem_micro"
    assert default_name("pkg.mod:GNConv3x3Stem", "tiny") == "gn_conv3x3_stem_tiny"
    from robustbench_vit.commands.compare import contender

    new = contender(EXAMPLE, size="1gf")
    assert new.spec.depth == new.complexity.depth
    assert abs(new.complexity.flop_ratio - 1) < 0.05
    assert set(new.baselines) == {"vit_p_1gf", "vit_c_1gf"}
