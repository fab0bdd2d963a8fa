"""The leaderboard: every stem in a storage ranked with intervals (unresolved stems share a rank), Holm over the
stems, CSV / JSON, a self-contained site that renders in headless Chromium."""

import csv
import json

import pytest

from robustbench_vit.cli import main
from robustbench_vit.analysis.leaderboard import holm
from tests import study_fixtures
from tests.study_fixtures import write_study
from tests.test_report_browser import CHROMIUM, Chromium

MODELS = ("vit_p_micro", "vit_c_micro", "vit_hmlp_micro", "vit_swin_micro", "mine<b>&")


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """A storage holding both baselines and three stems (hmlp on the conv stem's surface, swin on patchify's)."""
    monkeypatch.setitem(study_fixtures.SURFACE, "vit_hmlp_micro", study_fixtures.SURFACE["vit_c_micro"])
    monkeypatch.setitem(study_fixtures.SURFACE, "vit_swin_micro", study_fixtures.SURFACE["vit_p_micro"])
    url = f"sqlite:///{tmp_path / 'lb.db'}"
    write_study(url, "lb_demo", MODELS, points=16)
    return url


def test_holm_adjusts_step_down_and_keeps_nan():
    assert holm([0.01, 0.04, float("nan"), 0.03]) == pytest.approx([0.03, 0.06, float("nan"), 0.06], nan_ok=True)


def test_leaderboard_ranks_every_stem_with_intervals_and_writes_csv_json_html(stored, tmp_path, capsys):
    out = tmp_path / "lb"
    assert main(["leaderboard", "--storage", stored, "--out", str(out), "--format", "html,csv,json"]) == 0
    assert "html: " in capsys.readouterr().out
    rows = json.loads((out / "leaderboard.json").read_text())
    by = {r["model"]: r for r in rows}
    assert set(by) == set(MODELS) - {"vit_p_micro"}  # every model but the patchify baseline it is ranked against
    assert by["vit_hmlp_micro"]["rank"] == by["vit_c_micro"]["rank"] == 1  # the same surface: not resolved apart
    assert by["vit_swin_micro"]["rank"] > 1 and by["vit_swin_micro"]["p_outcome"] != "more robust"
    assert by["vit_hmlp_micro"]["p_outcome"] == "more robust" and by["vit_c_micro"]["c_outcome"] == "baseline"
    for r in rows:
        assert r["rank_low"] <= r["rank"] <= r["rank_high"] <= len(rows)
        assert r["p_low"] <= r["p_difference"] <= r["p_high"] and r["p_p_holm"] >= r["p_p"]
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    with (out / "leaderboard.csv").open() as f:
        assert [r["model"] for r in csv.DictReader(f)] == [r["model"] for r in rows]
    index = (out / "index.html").read_text()
    assert "mine&lt;b&gt;&amp;" in index and "<b>&" not in index and "<script" not in index
    assert all(m in index for m in ("vit_hmlp_micro", "vit_swin_micro", "vit_c_micro"))
    page = (out / "stems" / "lb_demo--vit_hmlp_micro.html").read_text()
    assert "vs vit_p_micro" in page and "vs vit_c_micro" in page and "rank 1" in page


def test_leaderboard_mistakes_are_one_line(stored, tmp_path, capsys):
    assert main(["leaderboard", "--storage", stored, "--out", str(tmp_path / "x"), "--format", "htm"]) == 2
    assert "allowed formats are csv, html, json" in capsys.readouterr().err
    assert main(["leaderboard", "--runs-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "y")]) == 2
    assert "no studies in" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian: chromium)")
def test_leaderboard_renders_in_chromium(stored, tmp_path):
    out = tmp_path / "lb"
    assert main(["leaderboard", "--storage", stored, "--out", str(out)]) == 0
    browser = Chromium(tmp_path)
    try:
        browser.open(out / "index.html")
        assert browser.problems() == []
        assert all(u.startswith(("file://", "data:")) for u in browser.requests()), browser.requests()
        dom = browser.evaluate("""({rows: document.querySelectorAll('tbody tr, table tr').length,
            links: [...document.querySelectorAll('a[href^="stems/"]')].map(a => a.getAttribute('href'))})""")
        assert dom["rows"] == 5 and len(dom["links"]) == 4, dom  # a header and one row per ranked model
        browser.open(out / "stems" / "lb_demo--vit_swin_micro.html")
        assert browser.problems() == []
    finally:
        browser.close()


def test_a_claim_study_scores_the_papers_claims_per_stem(tmp_path, monkeypatch, capsys):
    # a storage holding lr_wd_stability (the study of the claims adamw_lr_wd and peak_error) with a stem: its row
    # carries both claims scored with the stem in ViT_C's place, as reproduce would score them
    monkeypatch.setitem(study_fixtures.SURFACE, "vit_hmlp_micro", study_fixtures.SURFACE["vit_c_micro"])
    url = f"sqlite:///{tmp_path / 'claims.db'}"
    write_study(url, "lr_wd_stability", ("vit_p_micro", "vit_c_micro", "vit_hmlp_micro"), points=16)
    out = tmp_path / "lb"
    assert main(["leaderboard", "--storage", url, "--out", str(out), "--format", "json,html"]) == 0
    by = {r["model"]: r for r in json.loads((out / "leaderboard.json").read_text())}
    for model in ("vit_hmlp_micro", "vit_c_micro"):
        claims = dict(c.split(": ") for c in by[model]["claims"].split("; "))
        assert set(claims) == {"adamw_lr_wd", "peak_error", "cnn_adamw", "patch_vs_cnn", "cost_parity"}
        assert claims["cnn_adamw"] == "inconclusive"  # no RegNetY in this study
        assert set(claims.values()) <= {"reproduced", "contradicted", "equivalent", "inconclusive", "incomplete"}
    assert "peak_error: reproduced" in by["vit_hmlp_micro"]["claims"]  # best 5% vs ViT_P's 8% on the surfaces
    assert "paper's claims" in (out / "index.html").read_text()


def test_the_cnn_reference_is_a_row_read_from_its_side(tmp_path):
    """RegNetY is the baseline of the ViTs' comparisons; its own row turns them round: the synthetic CNN (flatter,
    lower bowl) reads "more robust" than both ViTs, with the differences' signs flipped, and is named a reference,
    its p values kept out of the stems' Holm adjustment."""
    url = f"sqlite:///{tmp_path / 'ref.db'}"
    write_study(url, "lr_wd_stability", ("vit_p_micro", "vit_c_micro", "regnety_micro"), points=16)
    out = tmp_path / "lb"
    assert main(["leaderboard", "--storage", url, "--out", str(out), "--format", "json,html"]) == 0
    by = {r["model"]: r for r in json.loads((out / "leaderboard.json").read_text())}
    cnn, vit = by["regnety_micro"], by["vit_c_micro"]
    assert cnn["reference"] is True and vit["reference"] is False
    assert cnn["p_outcome"] == cnn["c_outcome"] == "more robust" and cnn["c_low"] <= cnn["c_difference"] <= cnn["c_high"]
    assert cnn["c_difference"] > 0
    assert cnn["p_p_holm"] is None or cnn["p_p_holm"] != cnn["p_p_holm"]  # None / NaN: not a stem under test
    assert vit["p_p_holm"] == vit["p_p_holm"] is not None  # ViT_C's is adjusted (alone: itself)
    assert "CNN reference" in (out / "index.html").read_text()
