"""The demo's HTML report: the story's timeline, a chart of the handset's state and the
account's balance, the invoices and payments, and the service receipt.

It owns the presentation only: every figure comes from the demo's world (its timeline lines
and samples) and from the billing engine's reports (invoices, payments, account view); no
money is recomputed here except the table totals, which add up the engine's own figures.
Times are ISO 8601 in UTC with the zone (`2026-01-05T08:00Z`), with the story's day beside
them. The page needs no script: it prints and renders the same in any browser.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from protocol.coretime import DAY, EPOCH_UNIX
from provider.billing.money import fmt

STATE_COLOURS = {
    "normal": "#43a047", "early_service_recall": "#ffb300", "lockout": "#e53935",
    "code_unlock": "#8e24aa", "service": "#1e88e5", "removed": "#9e9e9e",
}
STATE_LABELS = {
    "normal": "normal", "early_service_recall": "early service recall", "lockout": "lockout",
    "code_unlock": "code unlock", "service": "service", "removed": "not installed / removed",
}

# chart geometry (px)
WIDTH, HEIGHT = 960, 380
LEFT, RIGHT = 90, 45
BAND_TOP, BAND_H = 28, 26
PLOT_TOP, PLOT_BOTTOM = 110, 330


def iso(core_seconds: int) -> str:
    """Core seconds as ISO 8601 UTC with the zone (the simulator's one style, sim/timeline.stamp)."""
    return datetime.fromtimestamp(core_seconds + EPOCH_UNIX, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date(iso_text: str | None) -> str:
    return (iso_text or "")[:10]


def _minute(iso_text: str | None) -> str:
    """The billing reports' ISO 8601, as the rest of the report shows times."""
    return iso_text or ""


def directive_text(action: str, args: dict) -> str:
    """A directive for people: `recall (cause unpaid_balance, days 7)`."""
    if not args:
        return action
    return f"{action} (" + ", ".join(f"{k} {v}" for k, v in sorted(args.items())) + ")"


def _nice_step(top_cents: int, ticks: int = 5) -> int:
    """A round money step (1, 2 or 5 times a power of ten, in cents) giving about `ticks` lines."""
    raw = max(top_cents // ticks, 1)
    power = 1
    while power * 10 <= raw:
        power *= 10
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def state_runs(samples: list[tuple[int, str, int]], t_end: int) -> list[tuple[int, int, str]]:
    """(start, end, state) for each run of one state in the time-ordered samples."""
    runs: list[list] = []
    for t, state, _ in samples:
        if runs and runs[-1][2] == state:
            continue
        if runs:
            runs[-1][1] = t
        runs.append([t, t_end, state])
    return [(a, b, s) for a, b, s in runs if b > a]


def svg_chart(samples: list[tuple[int, str, int]], t0: int) -> str:
    """The handset's state as coloured bands over the account's balance as a step line,
    on one time axis (weeks, labelled with dates) with a money axis and gridlines."""
    samples = sorted(samples)
    t_end = max(s[0] for s in samples)
    span = max(t_end - t0, 1)
    step = _nice_step(max(max(s[2] for s in samples), 100))
    top = (max(max(s[2] for s in samples), 1) + step - 1) // step * step
    right = WIDTH - RIGHT

    def x(t: int) -> float:
        return LEFT + (t - t0) / span * (right - LEFT)

    def y(cents: int) -> float:
        return PLOT_BOTTOM - cents / top * (PLOT_BOTTOM - PLOT_TOP)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
           f'height="{HEIGHT}" font-family="sans-serif" font-size="11" role="img" '
           f'aria-label="handset state and account balance over time">']
    # the handset's state, a band per run of one state
    out.append(f'<text x="{LEFT - 8}" y="{BAND_TOP + 17}" text-anchor="end">handset</text>')
    runs = state_runs(samples, t_end)
    for start, end, state in runs:
        out.append(f'<rect class="band" data-state="{state}" x="{x(start):.1f}" y="{BAND_TOP}" '
                   f'width="{max(x(end) - x(start), 0.5):.1f}" height="{BAND_H}" shape-rendering="crispEdges" '
                   f'fill="{STATE_COLOURS.get(state, "#777")}"><title>{html.escape(STATE_LABELS.get(state, state))}: '
                   f'{iso(start)} to {iso(end)}</title></rect>')
    # legend: only the states the story went through, in order of first appearance
    seen: list[str] = []
    for _, _, state in runs:
        if state not in seen:
            seen.append(state)
    lx = LEFT
    for state in seen:
        label = STATE_LABELS.get(state, state)
        out.append(f'<g class="legend" data-state="{state}"><rect x="{lx}" y="{BAND_TOP + BAND_H + 10}" '
                   f'width="10" height="10" fill="{STATE_COLOURS.get(state, "#777")}"/>'
                   f'<text x="{lx + 14}" y="{BAND_TOP + BAND_H + 19}">{html.escape(label)}</text></g>')
        lx += 14 + 6 * len(label) + 18
    # money axis with gridlines
    for cents in range(0, top + 1, step):
        yy = y(cents)
        out.append(f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{right}" y2="{yy:.1f}" stroke="#e0e0e0"/>')
        out.append(f'<text class="ytick" x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{fmt(cents)}</text>')
    out.append(f'<text x="14" y="{(PLOT_TOP + PLOT_BOTTOM) / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 14 {(PLOT_TOP + PLOT_BOTTOM) / 2:.0f})">balance owed (USD)</text>')
    # time axis: a gridline and a date every week
    for day in range(0, span // DAY + 1, 7):
        xx = x(t0 + day * DAY)
        out.append(f'<line x1="{xx:.1f}" y1="{PLOT_TOP}" x2="{xx:.1f}" y2="{PLOT_BOTTOM}" stroke="#e0e0e0"/>')
        out.append(f'<text class="xtick" x="{xx:.1f}" y="{PLOT_BOTTOM + 16}" text-anchor="middle">'
                   f'{iso(t0 + day * DAY)[:10]}</text>')
    out.append(f'<text x="{(LEFT + right) / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">date (UTC), '
               f'a gridline a week</text>')
    out.append(f'<line x1="{LEFT}" y1="{PLOT_BOTTOM}" x2="{right}" y2="{PLOT_BOTTOM}" stroke="#555"/>')
    out.append(f'<line x1="{LEFT}" y1="{PLOT_TOP}" x2="{LEFT}" y2="{PLOT_BOTTOM}" stroke="#555"/>')
    # the balance as a step line: it holds its value until the next change
    path = [f"M{x(samples[0][0]):.1f},{y(samples[0][2]):.1f}"]
    for t, _, cents in samples[1:]:
        path.append(f"H{x(t):.1f}V{y(cents):.1f}")
    out.append(f'<path class="balance" d="{"".join(path)}" fill="none" stroke="#212121" stroke-width="1.6"/>')
    out.append("</svg>")
    return "\n".join(out)


def _money_cell(cents: int | None) -> str:
    return '<td class="num"></td>' if cents is None else f'<td class="num">{html.escape(fmt(cents))}</td>'


def invoice_table(invoices: list[dict]) -> str:
    """Every invoice with its subtotal, tax, total, what is left and its status, and totals."""
    rows = []
    for inv in invoices:
        rate = inv.get("tax_rate")
        rate_text = f" ({rate / 100:.2f}%)" if isinstance(rate, int) and rate else ""
        period = inv.get("period")
        rows.append(
            f'<tr class="invoice"><td>{html.escape(str(inv["number"]))}</td>'
            f'<td>{html.escape(str(inv["kind"]).replace("_", " "))}</td>'
            f'<td>{html.escape(_date(inv.get("issued_at")))}</td>'
            f'<td>{html.escape(_date(period[0]) + " to " + _date(period[1])) if period else ""}</td>'
            f'{_money_cell(inv["subtotal"])}'
            f'<td class="num">{html.escape(fmt(inv["tax"]))}{html.escape(rate_text)}</td>'
            f'{_money_cell(inv["total"])}{_money_cell(inv["outstanding"])}'
            f'<td class="status">{html.escape(inv["status"])}</td></tr>')
    totals = {k: sum(inv[k] for inv in invoices) for k in ("subtotal", "tax", "total", "outstanding")}
    rows.append(
        f'<tr class="totals"><th colspan="4">totals</th>{_money_cell(totals["subtotal"])}'
        f'{_money_cell(totals["tax"])}{_money_cell(totals["total"])}{_money_cell(totals["outstanding"])}'
        f'<th></th></tr>')
    head = ("<tr><th>number</th><th>kind</th><th>issued</th><th>period</th><th>subtotal</th>"
            "<th>tax</th><th>total</th><th>outstanding</th><th>status</th></tr>")
    return f'<table id="invoices">{head}\n' + "\n".join(rows) + "\n</table>"


def payment_table(payments: list[dict]) -> str:
    rows = [
        f'<tr><td class="when">{html.escape(_minute(p["at"]))}</td>'
        f'<td>{html.escape(str(p["kind"]).replace("_", " "))}</td><td>{html.escape(str(p["status"]))}</td>'
        f'{_money_cell(p["amount"])}<td>{html.escape(str(p["decline_code"] or ""))}</td></tr>'
        for p in payments
    ]
    head = "<tr><th>when</th><th>kind</th><th>status</th><th>amount</th><th>decline</th></tr>"
    return f'<table id="payments">{head}\n' + "\n".join(rows) + "\n</table>"


def timeline_table(lines, t0: int) -> str:
    rows = "\n".join(
        f'<tr><td class="when">{iso(line.t)}</td><td class="day">D{(line.t - t0) // DAY:02d}</td>'
        f"<td>{html.escape(line.source)}</td><td class=\"what\">{html.escape(line.text)}</td>"
        f"<td>{html.escape(STATE_LABELS.get(line.compliance or '', line.compliance or ''))}</td>"
        f"{_money_cell(line.balance)}</tr>"
        for line in sorted(lines, key=lambda line: line.t)
    )
    head = ("<tr><th>when (UTC)</th><th>day</th><th>who</th><th>what</th><th>handset</th>"
            "<th>balance</th></tr>")
    return f'<table id="timeline">{head}\n{rows}\n</table>'


CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#212121}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;white-space:nowrap;vertical-align:top}
td.what{white-space:normal;min-width:28em}
.when{white-space:nowrap}
th{background:#eee;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.totals th,tr.totals td{background:#f5f5f5;font-weight:bold}
svg{max-width:100%;height:auto;border:1px solid #eee}
@media print{body{margin:0;max-width:none} h2{page-break-after:avoid}}
"""


def html_report(*, serial: str, lines, samples, t0: int, summary: dict, receipt: str) -> str:
    account = summary["account"]
    ledger = "balanced" if summary["ledger"].get("balanced") else "NOT balanced"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>LCI-777 demo report</title><style>{CSS}</style></head>
<body>
<h1>LCI-777 — eight weeks of one client, end to end</h1>
<p>Handset {html.escape(serial)} on the simulator (the real device core), billed under the
provider's terms, serviced under the service center's work-order rules. Account
{html.escape(account['ref'])}: final status <b>{html.escape(account['status'])}</b>, balance
<b id="final-balance">{html.escape(fmt(account['balance']))}</b>; the ledger is <b>{ledger}</b>.
Times are UTC; D00 is <span class="when">{iso(t0)}</span>.</p>
<h2>Handset state and account balance</h2>
{svg_chart(samples, t0)}
<h2>Invoices</h2>
{invoice_table(summary["invoices"])}
<h2>Payments</h2>
{payment_table(summary["payments"])}
<h2>Timeline</h2>
{timeline_table(lines, t0)}
<h2>Service receipt</h2>
<pre>{html.escape(receipt)}</pre>
</body></html>
"""
