"""The pages a person takes in at a glance, laid out in real headless Chromium at a laptop's 1280 × 800 and a phone's
390 × 844: the report, the scorecard and the leaderboard each show no page-level horizontal scroll (measured from the
DOM: the document's scroll width against its client width), the first headline above the fold and the summary
figure (the forest plot) present; at 1280 the report's forest plot is in view without scrolling too. Screenshots
of each go to reports/_test_artifacts/ and the measurements are printed (pytest -s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustbench_vit.analysis.claims import Claim, Roles, ScoredClaim, Scorecard, score
from robustbench_vit.analysis.frame import load_results
from robustbench_vit.cli import main
from robustbench_vit.report.build import build_report
from robustbench_vit.report.scorecard import write_scorecard
from robustbench_vit.store import Results
from tests import study_fixtures
from tests.study_fixtures import write_study
from tests.test_report_browser import ARTIFACTS, CHROMIUM, Chromium, browser  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian: chromium)")]

VIEWPORTS = {"laptop": (1280, 800), "phone": (390, 844)}
MEASURE = """(() => {
  const d = document.documentElement, box = e => e ? e.getBoundingClientRect() : null;
  const svg = document.querySelector('svg[id^="svg-forest"]'), plot = box(svg);
  const head = box(document.querySelector(%r)), fig = box(svg && svg.closest('figure'));
  return {scroll: d.scrollWidth, client: d.clientWidth, height: d.scrollHeight,
          head_top: head && head.top, head_bottom: head && head.bottom,
          fig_top: fig && fig.top, fig_bottom: plot && plot.bottom, fig_width: fig && fig.width,
          wide: [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > d.clientWidth + 1
                 && !e.closest('.scroll, pre')).map(e => e.tagName + '.' + e.className).slice(0, 5)};
})()"""


def measure(browser: Chromium, page: Path, headline: str, name: str) -> dict[str, dict]:
    """The page's layout at each viewport (and a screenshot of each), checked: no page-level horizontal scroll, the
    first headline above the fold, the summary figure present and its box no wider than the page (on a phone the
    figure scrolls inside it)."""
    out = {}
    for label, (width, height) in VIEWPORTS.items():
        browser.open(page, width, height)
        assert browser.problems() == [], browser.problems()
        m = browser.evaluate(MEASURE % headline)
        shot = browser.screenshot(ARTIFACTS / f"{name}_{width}.png")
        print(f"{name} at {width}x{height}: scrollWidth {m['scroll']} for clientWidth {m['client']}, page height "
              f"{m['height']}, headline {m['head_top']:.0f}-{m['head_bottom']:.0f}, forest plot "
              f"{m['fig_top']:.0f}-{m['fig_bottom']:.0f} ({m['fig_width']:.0f} px wide); {shot}")
        assert m["scroll"] <= m["client"], (label, m)  # nothing scrolls sideways but inside its own box
        assert m["head_top"] is not None and m["head_bottom"] <= height, (label, m)  # the headline above the fold
        assert m["fig_top"] is not None and m["fig_width"] <= m["client"], (label, m)
        out[label] = m
    return out


def test_the_report_fits_a_laptop_and_a_phone_with_headline_and_forest_in_view(browser, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    write_study(url, "glance_demo", points=16, failed=1)
    html = build_report("glance_demo", Results.of(storage=url), out_dir=tmp_path / "report")["html"]
    got = measure(browser, html, "#verdict .headline", "report")
    assert got["laptop"]["fig_bottom"] <= VIEWPORTS["laptop"][1]  # the forest plot without scrolling, at 1280
    text = browser.evaluate("document.querySelector('#verdict .headline').innerText")
    assert text.startswith("vit_c_micro vs vit_p_micro: vit_c_micro is more robust than vit_p_micro: ")
    words = text.split(": ", 1)[1].split(" (details:")[0]
    assert len(words.split()) <= 25 + 11  # the headline (≤ 25 words) and its first-use gloss
    # the details open under it, with the full sentence and every bullet
    assert not browser.evaluate("document.querySelector('#verdict details').open")
    assert browser.evaluate("document.querySelector('#verdict summary').click(), "
                            "document.querySelector('#verdict details').open")
    assert "permutation test p =" in browser.evaluate("document.querySelector('#verdict .verdict').innerText")
    links = browser.evaluate("[...document.querySelectorAll('#verdict a.term')].map(a => a.getAttribute('href'))")
    assert links and all(browser.evaluate(f"!!document.getElementById({h[1:]!r})") for h in links)


def test_the_scorecard_fits_with_one_forest_row_per_claim(browser, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    write_study(url, "card_demo", points=16)
    df = load_results("card_demo", Results.of(storage=url))
    claims = [Claim(id="robust", statement="ViT_C is more robust.", where="Fig. 4", paper="EDF above.",
                    study="card_demo", test="robustness"),
              Claim(id="peak", statement="ViT_C reaches a lower best error.", where="Table 2",
                    paper="24.7 vs 27.7.", study="card_demo", test="best")]
    rows = tuple(ScoredClaim(score(c, df, Roles("micro", "vit_c_micro", "vit_p_micro"), power=False), "micro",
                             "../card_demo/report.html") for c in claims)
    card = Scorecard("quick", "2026-12-07 00:00 UTC", {"card_demo": "digits, 2 models"}, rows)
    html = write_scorecard(card, tmp_path / "card", ("html",))["html"]
    measure(browser, html, "#headlines li", "scorecard")
    ticks = browser.evaluate("document.querySelectorAll('#svg-forest g[id^=\"ytick\"]').length")
    assert ticks >= len(rows)  # a row per claim (one panel per unit)


def test_the_leaderboard_fits_with_its_forest_across_stems(browser, tmp_path, monkeypatch):
    monkeypatch.setitem(study_fixtures.SURFACE, "vit_hmlp_micro", study_fixtures.SURFACE["vit_c_micro"])
    url = f"sqlite:///{tmp_path / 'lb.db'}"
    write_study(url, "lb_demo", ("vit_p_micro", "vit_c_micro", "vit_hmlp_micro"), points=16)
    out = tmp_path / "lb"
    assert main(["leaderboard", "--storage", url, "--out", str(out)]) == 0
    measure(browser, out / "index.html", ".headlines li", "leaderboard")
    heads = browser.evaluate("[...document.querySelectorAll('.headlines li')].map(li => li.innerText)")
    assert {h.split(":")[0] for h in heads} == {"vit_c_micro vs vit_p_micro", "vit_hmlp_micro vs vit_p_micro",
                                                "vit_hmlp_micro vs vit_c_micro"}
