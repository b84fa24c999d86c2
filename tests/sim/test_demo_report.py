"""The demo report as a reader sees it: rendered by a real headless Chromium, its chart, invoice
table and timeline checked against the figures the demo itself wrote (summary.json)."""

from __future__ import annotations

import json
import re

import pytest

from sim import demo
from sim.demo_report import _nice_step, state_runs
from tests.browser import chromium_page

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")  # the simulator's one time style


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert demo.main(["--out", str(out), "--quiet"]) == 0
    return out / "report.html", json.loads((out / "summary.json").read_text())


def _dollars(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def test_the_report_in_a_real_browser(report):
    path, summary = report
    with chromium_page() as page:
        page.goto(path.as_uri())
        # the chart: bands per state run, a legend with exactly the states drawn, axes with labels
        band_states = page.eval_on_selector_all("svg rect.band", "els => els.map(e => e.dataset.state)")
        legend_states = page.eval_on_selector_all("svg g.legend", "els => els.map(e => e.dataset.state)")
        assert set(legend_states) == set(band_states) and len(legend_states) == len(set(band_states))
        assert {"normal", "early_service_recall", "lockout", "service", "removed"} <= set(band_states)
        xticks = page.eval_on_selector_all("svg text.xtick", "els => els.map(e => e.textContent)")
        assert len(xticks) >= 8 and all(re.match(r"^\d{4}-\d\d-\d\d$", t) for t in xticks)
        yticks = page.eval_on_selector_all("svg text.ytick", "els => els.map(e => e.textContent)")
        assert yticks[0] == "$0.00" and len(yticks) >= 3
        path_d = page.get_attribute("svg path.balance", "d")
        assert re.fullmatch(r"M[\d.]+,[\d.]+(H[\d.]+V[\d.]+)+", path_d), "the balance is a step line"
        box = page.eval_on_selector("svg", "e => { const r = e.getBoundingClientRect(); "
                                           "return [r.width, r.height]; }")
        assert box[0] > 600 and box[1] > 250  # laid out, not collapsed
        # no tick label leaves the chart
        overflow = page.eval_on_selector(
            "svg", "svg => { const r = svg.getBoundingClientRect(); return [...svg.querySelectorAll('text')]"
                   ".filter(t => { const b = t.getBoundingClientRect(); return b.right > r.right + 0.5 "
                   "|| b.left < r.left - 0.5; }).map(t => t.textContent); }")
        assert overflow == []

        # invoices: every invoice the engine made, with tax and status, and totals that add up
        rows = page.eval_on_selector_all(
            "#invoices tr.invoice", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
        assert [r[0] for r in rows] == [i["number"] for i in summary["invoices"]]
        for cells, inv in zip(rows, summary["invoices"], strict=True):
            assert cells[4] == _dollars(inv["subtotal"])
            assert cells[5].startswith(_dollars(inv["tax"]))
            assert cells[6] == _dollars(inv["total"])
            assert cells[7] == _dollars(inv["outstanding"])
            assert cells[8] == inv["status"]
        totals = page.eval_on_selector("#invoices tr.totals", "r => [...r.cells].map(c => c.textContent)")
        assert totals[1:5] == [_dollars(sum(i[k] for i in summary["invoices"]))
                               for k in ("subtotal", "tax", "total", "outstanding")]
        assert page.text_content("#final-balance") == _dollars(summary["account"]["balance"])

        # the timeline: one time format with its zone, short cells on one line, no Python repr
        whens = page.eval_on_selector_all("#timeline td.when", "els => els.map(e => e.textContent)")
        assert whens and all(ISO_TIME.match(w) for w in whens)
        wrapped = page.eval_on_selector_all(  # a wrapped text has more than one line box
            "#timeline td:not(.what)", "els => els.filter(e => { const r = document.createRange(); "
                                       "r.selectNodeContents(e); return new Set([...r.getClientRects()]"
                                       ".map(b => Math.round(b.top))).size > 1; }).map(e => e.textContent)")
        assert wrapped == [], f"timeline cells other than 'what' wrap: {wrapped[:3]}"
        text = page.text_content("#timeline")
        for repr_bit in ("{'", '{"', "['", "True", "False", "None"):
            assert repr_bit not in text, repr_bit
        whats = page.eval_on_selector_all("#timeline td.what", "els => els.map(e => e.textContent)")
        for what in whats:
            words = what.split()
            for a, b in zip(words, words[1:], strict=False):
                assert not (a.endswith(":") and b == a[:-1]), f"repeated: {what}"
        assert page.screenshot(full_page=True)[:8] == b"\x89PNG\r\n\x1a\n"


def test_state_runs_and_money_steps():
    samples = [(0, "removed", 0), (10, "normal", 0), (20, "normal", 500), (30, "lockout", 500)]
    assert state_runs(samples, 40) == [(0, 10, "removed"), (10, 30, "normal"), (30, 40, "lockout")]
    assert _nice_step(15164) in (2000, 5000)
    assert _nice_step(100) == 20
