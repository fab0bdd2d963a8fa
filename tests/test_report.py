"""HTML and PDF reports from real Optuna storage: content, escaping, robustness to partial studies, CLI."""

import json
import re
import textwrap

import pandas as pd
import pytest
from pypdf import PdfReader

from robustbench_vit.cli import main
from robustbench_vit.errors import UserError
from robustbench_vit.report.build import build_report
from robustbench_vit.store import Results
from tests.study_fixtures import write_study


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    """Study `demo`: vit_p / vit_c / a user model on 16 paired lr×wd points, one failed and one running each."""
    u = f"sqlite:///{tmp_path_factory.mktemp('report') / 'study.db'}"
    write_study(u, "demo", models=("vit_p_micro", "vit_c_micro", "mine<b>&"), points=16, failed=1, running=1)
    return u


@pytest.fixture(scope="module")
def built(url, tmp_path_factory):
    """The demo report in both formats."""
    return build_report("demo", Results.of(storage=url), out_dir=tmp_path_factory.mktemp("out"), formats=("html", "pdf"))


def test_html_is_complete_and_self_contained(built):
    html = built["html"].read_text()
    assert "(partial)" in html and 'id="partial"' in html
    # one verdict per (model, baseline) pair, with the numbers behind it
    mine = "mine&lt;b&gt;&amp;"
    for pair in ("vit_c_micro vs vit_p_micro", f"{mine} vs vit_p_micro", f"{mine} vs vit_c_micro"):
        assert f"<strong>{pair}</strong>: " in html  # its headline, the details under it
    assert "vit_c_micro is more robust than vit_p_micro" in html and "permutation test p =" in html
    assert "95% bootstrap interval" in html and "power to decide" in html.lower() and "margin ±0.05" in html
    # every figure: an <svg>, a TOC link, and the count the page states; the summary figure (forest plot) on top
    n = int(re.search(r'data-figures="(\d+)"', html).group(1))
    ids = re.findall(r'<figure id="fig-([\w-]+)"', html)
    assert ids[0] == "forest" and n == len(ids) - 1 == html.count("<svg ") - 1 >= 8
    assert html.index('id="fig-forest"') < html.index('id="toc"')
    assert all(f'href="#fig-{i}"' in html for i in ids[1:])
    # no request to anywhere: no external src/href, no script
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<script" not in html
    for section in ("metrics-table", "comparisons-table", "failed-table", "status-table", "spec", "provenance"):
        assert f'id="{section}"' in html


def test_user_strings_are_escaped(built):
    html = built["html"].read_text()
    assert "<b>&" not in html and "mine&lt;b&gt;&amp;" in html  # a model name, in tables and SVG text
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html  # a string inside the stored spec
    assert "CUDA OOM &lt;x&gt;" in html  # a failed trial's message


def test_failed_and_diverged_are_counted_and_listed(built):
    html = built["html"].read_text()
    assert re.search(r"Did not train: diverged \(\d+\) and at chance \(\d+\) trials count at 100%", html)
    assert "Incomplete study: 3 trials failed" in html and "left no result" in html  # failed: no result
    failed = re.search(r'<table id="failed-table">(.*?)</table>', html, re.S).group(1)
    assert failed.count("CUDA OOM") == 3  # one per model


def test_pdf_pages_and_text(built):
    reader = PdfReader(built["pdf"])
    texts = [p.extract_text() for p in reader.pages]
    fig_pages = [i for i, t in enumerate(texts) if re.search(r"Figure \d+\. ", t) and "Contents" not in t]
    html = built["html"].read_text()
    n_fig = int(re.search(r'data-figures="(\d+)"', html).group(1))
    assert len(fig_pages) == n_fig + 1 and len(reader.pages) >= n_fig + 3  # the summary figure first
    assert "At a glance" in texts[fig_pages[0]] and "Δerror EDF" in texts[fig_pages[1]]
    assert "Verdict" in texts[0] and "(partial)" in texts[0]
    joined = " ".join(t.replace("\n", " ") for t in texts)
    assert "vit_c_micro is more robust than vit_p_micro" in joined
    for section in ("Metrics per model", "Comparisons against baselines", "Study spec", "Provenance"):
        assert section in joined
    # the contents give the right page of every figure
    for k, page in enumerate(fig_pages, 1):
        assert re.search(rf"Figure {k}\. [^\n]*page {page + 1}\b", texts[0] + texts[1])


def test_one_model_one_trial_and_nothing_finished(tmp_path):
    u = f"sqlite:///{tmp_path / 's.db'}"
    write_study(u, "single", models=("vit_c_micro",), points=1)
    write_study(u, "waiting", models=("vit_p_micro", "vit_c_micro"), points=0, pending=2)
    html = build_report("single", Results.of(storage=u), out_dir=tmp_path / "a", formats=("html", "pdf"))["html"].read_text()
    assert "Comparisons unavailable" in html and "Only one model" in html
    out = build_report("waiting", Results.of(storage=u), out_dir=tmp_path / "b", formats=("html", "pdf"))
    html = out["html"].read_text()
    assert "No trial has a result yet" in html and "(partial)" in html
    assert len(PdfReader(out["pdf"]).pages) >= 1


def test_unknown_study_and_bad_format_write_nothing(url, tmp_path):
    with pytest.raises(UserError, match=r"unknown study 'nope'.*demo"):
        build_report("nope", Results.of(storage=url), out_dir=tmp_path / "x")
    with pytest.raises(UserError, match=r"unknown format 'docx'; allowed formats are html, pdf"):
        build_report("demo", Results.of(storage=url), out_dir=tmp_path / "y", formats=("html", "docx"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_report_and_export(url, tmp_path, capsys):
    assert main(["report", "demo", "--storage", url, "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.html").is_file() and not (tmp_path / "r" / "report.pdf").exists()
    out = capsys.readouterr().out  # each comparison's headline, then the files
    assert "report.html" in out and out.index("vit_c_micro vs vit_p_micro: ") < out.index("html: ")
    assert all(len(line) <= 80 for line in out.splitlines() if "vs" in line or line.startswith("    "))
    assert main(["report", "demo", "--storage", url, "--out", str(tmp_path / "r"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["files"]["html"].endswith("report.html") and {v["comparison"] for v in got["verdicts"]} >= {
        "vit_c_micro vs vit_p_micro"} and all(len(v["headline"].split()) <= 25 for v in got["verdicts"])
    assert main(["report", "nope", "--storage", url, "--out", str(tmp_path / "n")]) == 2
    assert "unknown study 'nope'" in capsys.readouterr().err and not (tmp_path / "n").exists()
    assert main(["export", "demo", "--storage", url, "--out", str(tmp_path / "t.parquet")]) == 0
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert set(back["model"]) == {"vit_p_micro", "vit_c_micro", "mine<b>&"} and len(back) == 3 * 18


@pytest.mark.slow
def test_report_of_a_real_trained_study(tmp_path, monkeypatch):
    """The whole path: the harness trains a tiny study on digits, then report and export read it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(textwrap.dedent("""
        name: tiny_real
        description: a real 4-epoch lr sweep (88 steps at lr 3e-3 learn, lr 1 does not)
        models: [vit_p_micro, vit_c_micro]
        dataset: digits
        train: {optimizer: adamw, weight_decay: 0.05, epochs: 4, batch_size: 64, warmup_epochs: 0, threads: 1}
        space:
          lr: {values: [0.003, 1.0]}
        design: {kind: grid, seeds: 1}
    """))
    assert main(["study", "run", "tiny.yaml", "--runs-dir", "runs"]) == 0
    assert main(["study", "status", "tiny.yaml", "--runs-dir", "runs"]) == 0  # by its YAML path, as it ran
    assert main(["report", "tiny.yaml", "--runs-dir", "runs", "--format", "html,pdf"]) == 0
    html = (tmp_path / "reports" / "tiny_real" / "report.html").read_text()
    assert "<strong>vit_c_micro vs vit_p_micro</strong>: " in html and "(partial)" not in html
    assert html.count("<svg ") - 1 == int(re.search(r'data-figures="(\d+)"', html).group(1)) >= 4  # + the forest
    assert len(PdfReader(tmp_path / "reports" / "tiny_real" / "report.pdf").pages) >= 4
    assert main(["export", "tiny_real", "--runs-dir", "runs", "--out", "t.csv"]) == 0
    t = pd.read_csv(tmp_path / "t.csv")
    assert len(t) == 4 and t["history"].str.startswith("[").all()
    # both models learned at lr 3e-3 (well below chance, 90%); at lr 1 they did not train (diverged or collapsed)
    good, bad = t[t["lr"] == 0.003], t[t["lr"] == 1.0]
    assert (good["status"] == "complete").all() and (good["final_error"] < 80).all(), good[["model", "final_error"]]
    assert set(bad["status"]) <= {"diverged", "collapsed"}, bad[["model", "status", "final_error"]]


def _verdicts(df: pd.DataFrame) -> dict:
    """The report's verdicts by title for a hand-made trial table."""
    from robustbench_vit.analysis import metrics as M
    from robustbench_vit.analysis.comparison import comparisons
    from robustbench_vit.analysis.verdict import verdicts

    return {v.title: v for v in verdicts(M.model_metrics(df), comparisons(df))}


def _verdict_texts(df: pd.DataFrame) -> dict[str, str]:
    """The report's verdict paragraphs by title for a hand-made trial table."""
    return {t: v.text for t, v in _verdicts(df).items()}


def test_significant_but_crossing_edfs_never_read_more_robust():
    # vit_p: Δ = 0 ×20 and 9 ×20 (area 0.55); vit_c: Δ = 0 ×10 and 3 ×30 (area 0.775): the area difference
    # +0.225 [+0.105, +0.345] is beyond the margin, but the Δ-EDFs cross (vit_p above on (0, 3] by 0.25, vit_c
    # above on (3, 9])
    p = [10.0] * 20 + [19.0] * 20
    c = [10.0] * 10 + [13.0] * 30
    df = pd.DataFrame(dict(model=["vit_p_x"] * 40 + ["vit_c_x"] * 40, seed=list(range(40)) * 2,
                           status="complete", lr=1e-3, error=p + c))
    (title, v), = _verdicts(df).items()
    assert title == "vit_c_x vs vit_p_x" and v.outcome == "differ, EDFs cross" and v.more_robust is None
    assert "more robust than" not in v.text and v.p < 0.05
    assert v.headline.startswith("The Δerror distributions of vit_c_x and vit_p_x differ beyond the margin, but the "
                                 "Δ-EDFs cross")
    # areas that barely differ (0.55 vs 0.56) with a large KS gap: neither beyond nor inside the margin
    df.loc[df["model"] == "vit_c_x", "error"] = [10.0] + [14.5] * 39
    (_, v), = _verdicts(df).items()
    assert v.outcome in ("inconclusive", "equivalent") and v.more_robust is None
    # the same gap with vit_c dominating (Δ = 0 ×20, 4.5 ×20 vs vit_p's 0 ×5, 9 ×35) does read "more robust"
    df.loc[df["model"] == "vit_c_x", "error"] = [10.0] * 20 + [14.5] * 20
    df.loc[df["model"] == "vit_p_x", "error"] = [10.0] * 5 + [19.0] * 35
    (_, v), = _verdicts(df).items()
    assert v.outcome == "more robust" and v.headline.startswith("vit_c_x is more robust than vit_p_x (Δ-EDF area")


def test_tpe_points_are_not_paired_and_sizes_are_not_mixed():
    # TPE: point k of each model holds different lr values → no "identical settings" claim; and a 4gf model is
    # never compared with a 1gf one
    rows = [dict(model=m, size=m.rsplit("_", 1)[1], point=k, seed=0, lr=lr * (2 if "_c_" in m else 1),
                 status="complete", error=10.0 + k + (0 if "_c_" in m else 3))
            for m in ("vit_p_1gf", "vit_c_1gf", "vit_p_4gf", "vit_c_4gf") for k, lr in enumerate([1e-4, 1e-3, 1e-2])]
    texts = _verdict_texts(pd.DataFrame(rows))
    assert sorted(texts) == ["vit_c_1gf vs vit_p_1gf", "vit_c_4gf vs vit_p_4gf"]
    assert all("(no identical settings to pair)" in t and "identical settings (" not in t for t in texts.values())
