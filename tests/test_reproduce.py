"""`robustbench-vit reproduce` end to end on a tiny study of our own (a claims file in ./studies/claims/ takes
the built-in one's place): real training, real storage, the scorecard in HTML and PDF, a rerun that trains
nothing, the GPU-hour gate, and `compare --claims` with a user stem."""

from __future__ import annotations

import json
import time
from pathlib import Path

import optuna
import pytest
from pypdf import PdfReader

from robustbench_vit.cli import main

STEM = str(Path(__file__).resolve().parents[1] / "examples" / "overlap_stem.py") + ":OverlapPatchStem"
TINY = ("models: [vit_p_micro, vit_c_micro]\ntrain: {epochs: 1, batch_size: 256, threads: 1}\n"
        "space:\n  lr: {values: [0.0005, 0.002, 0.008]}\n")
CLAIMS = """claims:
  - {id: robust, statement: ViT_C is more robust., where: Fig. 4, paper: EDF above., from_figure: true,
     study: tiny, test: robustness}
  - {id: peak, statement: ViT_C reaches a lower best error., where: Table 2, paper: 24.7 vs 27.7., study: tiny,
     test: best}
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working folder with studies/tiny.yaml and studies/claims/paper.yaml."""
    (tmp_path / "studies" / "claims").mkdir(parents=True)
    (tmp_path / "studies" / "tiny.yaml").write_text(TINY)
    (tmp_path / "studies" / "claims" / "paper.yaml").write_text(CLAIMS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_reproduce_writes_a_scorecard_linked_to_the_study_report_and_reruns_in_seconds(here, capsys):
    assert main(["reproduce", "--runs-dir", "runs"]) == 0
    out, err = capsys.readouterr()
    assert "tiny: 6/6 trials finished; 6 ran now" in err
    assert "Does the paper hold?" in out and "robust (micro)" in out and "peak (micro)" in out
    card = here / "reports" / "reproduce" / "scorecard.html"
    html = card.read_text()
    assert html.count('data-status="') == 2 and 'href="../tiny/report.html"' in html
    assert (card.parent / "../tiny/report.html").resolve().is_file()
    statuses = [s.split('"')[0] for s in html.split('data-status="')[1:]]
    assert set(statuses) <= {"reproduced", "contradicted", "inconclusive"}
    assert "paired permutation test over 3 paired settings" in html and "power" in html
    text = "".join(page.extract_text() for page in PdfReader(card.with_suffix(".pdf")).pages)
    assert "Does the paper hold?" in text and "peak (micro)" in text
    t0 = time.perf_counter()
    assert main(["reproduce", "--runs-dir", "runs", "--claims", "peak", "--format", "html"]) == 0
    assert time.perf_counter() - t0 < 60 and "tiny: 6/6 trials finished; 0 ran now" in capsys.readouterr().err


def test_paper_scale_needs_a_yes_above_100_gpu_hours(here, capsys):
    """The paper preset of the real studies: its plan and GPU-hour estimate, then a refusal without --yes."""
    (here / "studies" / "claims" / "paper.yaml").unlink()  # the built-in claims and studies
    assert main(["reproduce", "--preset", "paper", "--runs-dir", "runs"]) == 2
    err = capsys.readouterr().err
    assert "trials planned, about" in err and "GPU-hours" in err and "pass --yes to launch" in err
    assert not (here / "runs").exists()


def test_reproduce_trains_the_cnn_reference_only_where_a_claim_speaks_of_it(here, capsys):
    """The built-in claims' plan: RegNetY in the AdamW and optimizer studies (cnn_adamw, patch_vs_cnn,
    cnn_optimizer_gap), not in epoch_stability, whose one claim compares the two ViTs; `study run` keeps it."""
    (here / "studies" / "claims" / "paper.yaml").unlink()  # the built-in claims and studies
    assert main(["reproduce", "--dry-run"]) == 0
    plan = {line.split(":")[0]: line for line in capsys.readouterr().out.splitlines() if "model(s)" in line}
    assert "regnety_micro" in plan["lr_wd_stability"] and "regnety_micro" in plan["optimizer_stability"], plan
    assert "(vit_p_micro, vit_c_micro)" in plan["epoch_stability"], plan
    assert main(["reproduce", "--claims", "schedule_length,cnn_optimizer_gap", "--dry-run", "--until-decided"]) == 0
    plan = capsys.readouterr().out
    assert "epoch_stability: 2 model(s)" in plan and "optimizer_stability: 3 model(s)" in plan, plan
    # a CPU-sized plan is told in CPU time and trials, never as "0.0 GPU-hours"
    assert "on this CPU" in plan and "fixed plan 36 trials" in " ".join(plan.split()) and "GPU-hours" not in plan
    assert main(["study", "run", "epoch_stability", "--dry-run"]) == 0
    assert "regnety_micro" in capsys.readouterr().out
    assert not (here / "runs").exists()


@pytest.mark.slow
def test_compare_scores_a_stem_on_the_claims(here, capsys):
    assert main(["compare", "--stem", STEM, "--claims", "peak", "--runs-dir", "runs", "--format", "html"]) == 0
    html = (here / "reports" / "claims-overlap_patch_stem_micro" / "scorecard.html").read_text()
    assert "peak</a> (micro)" in html and "overlap_patch_stem_micro" in html


def test_claims_against_the_cnn_reference_score_a_stem_and_the_baselines(here, capsys):
    """A study with `reference: regnety` (its lr 5× each point's): reproduce scores ViT_C against RegNetY and the
    measured cost; compare --claims puts the stem in ViT_C's place against the same RegNetY trials (not rerun)."""
    (here / "studies" / "ref.yaml").write_text(TINY + "reference: regnety\nscale:\n  regnety: {lr: 5}\n")
    (here / "studies" / "claims" / "paper.yaml").write_text("""claims:
  - {id: cnn, statement: ViT_C is at least as robust as RegNetY., where: Fig. 4, paper: EDF., study: ref,
     test: robustness, models: [conv, reference], expect: at_least}
  - {id: cost, statement: ViT_C costs what ViT_P does., where: Table 1, paper: 5.7 vs 5.5M., study: ref,
     test: cost, tolerance: {activations: 5, step_seconds: 1000}}
""")
    assert main(["reproduce", "--runs-dir", "runs", "--format", "html", "--json"]) == 0
    rows = {r["claim"]: r for r in json.loads(capsys.readouterr().out)["claims"]}
    assert "vit_c_micro − regnety_micro" in rows["cnn"]["ours"], rows["cnn"]
    assert rows["cost"]["status"] == "reproduced" and "activations vit_c_micro +4.0%" in rows["cost"]["ours"]
    study = optuna.load_study(study_name="ref/regnety_micro", storage="sqlite:///runs/ref/study.db")
    assert sorted(round(t.user_attrs["config"]["lr"], 6) for t in study.trials) == [0.0025, 0.01, 0.04]
    assert sorted(t.params["lr"] for t in study.trials) == [0.0005, 0.002, 0.008]  # the design's points, paired
    assert main(["compare", "--stem", STEM, "--claims", "cnn", "--runs-dir", "runs", "--format", "html"]) == 0
    err = capsys.readouterr().err
    assert "ref: 12/12 trials finished; 3 ran now" in err, err  # the stem's 3; RegNetY's and the ViTs' reused
    html = (here / "reports" / "claims-overlap_patch_stem_micro" / "scorecard.html").read_text()
    assert "overlap_patch_stem_micro − regnety_micro" in html
