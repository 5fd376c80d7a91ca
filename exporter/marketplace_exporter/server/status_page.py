"""The status page at ``/``: a summary first, then one page of checks, worst first.

At 50,000 checks a page listing all of them was megabytes and took seconds to build on the event
loop (issue 11), so the page now shows: counts per marketplace, site and state (each a link to that
selection); a filter form (``?marketplace=&site=&state=&q=``, plain GET, no script); and one page
of checks (``&page=``, ``&per_page=``, 100 by default) in the order of checks_query.py: failing,
credentials about to expire, pending, ok. ``/api/v1/checks`` answers the same query as JSON.

Server-rendered HTML with no script (the page's CSP forbids it): every value passes through
``html.escape``, including texts that came from a marketplace response. Headers are bilingual
because many of our users read Chinese first. Under 700 px wide the table turns into one card per
check so it reads on a phone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape
from urllib.parse import urlencode

from marketplace_exporter import __version__
from marketplace_exporter.catalogue import Credential, Reason
from marketplace_exporter.durations import format_duration
from marketplace_exporter.server.checks_query import (
    EXPIRING,
    PER_PAGE,
    STATES,
    CheckFilter,
    CheckPage,
    ShownCheck,
)
from marketplace_exporter.store import CheckStatus, Store

REFRESH_SECONDS = 10
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"

_COLUMNS = (
    ("marketplace", "平台"), ("site", "站点"), ("account", "账号"), ("check", "检查"),
    ("status", "状态"), ("latency", "延迟"), ("last failure", "最近失败"),
    ("credential expiry", "凭证到期"), ("rate-limit headroom", "限流余量"), ("last run", "上次运行"),
)
_STATE_NAMES = {"failing": "failing 失败", EXPIRING: "expiring 即将到期", "pending": "pending 等待",
                "ok": "ok 正常"}
_STATE_CSS = {"failing": "fail", EXPIRING: "warn", "pending": "muted", "ok": "ok"}

_CSS = """
*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:1rem;color:#1b1f24}
h1{font-size:1.3rem;margin:0 0 .3rem}h1 small{overflow-wrap:anywhere}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
p.meta{color:#57606a;margin:.2rem 0 1rem;font-size:.9rem}
.summary span{display:inline-block;margin-right:1rem;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}
th small{display:block;color:#57606a;font-weight:normal}
.scroll{overflow-x:auto;max-width:100%}table.counts{width:auto}table.counts td{text-align:right}
table.counts td:first-child,table.counts td:nth-child(2){text-align:left}
form{display:flex;flex-wrap:wrap;gap:.4rem .8rem;align-items:end;margin:.6rem 0}
form label{display:flex;flex-direction:column;font-size:.85rem;color:#57606a}
input,select,button{font:inherit;max-width:100%}nav.pages{margin:.6rem 0}nav.pages a{margin-right:.8rem}
.ok{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}.wait{color:#9a6700;font-weight:600}
.warn{color:#9a6700}.crit{color:#cf222e;font-weight:600}.muted{color:#57606a}
code{font-size:.85em;white-space:nowrap}code.wrap{white-space:normal;overflow-wrap:anywhere}
@media (max-width:700px){
 table.checks,table.checks tbody,table.checks tr,table.checks td{display:block;width:100%}
 table.checks thead{display:none}
 table.checks tr{border:1px solid #d0d7de;border-radius:6px;margin:0 0 .8rem;padding:.3rem}
 table.checks td{border:none;padding:.2rem .4rem;overflow-wrap:anywhere}
 table.checks td::before{content:attr(data-label);display:inline-block;min-width:9.5rem;margin-right:.6rem;
  color:#57606a}
}
"""


def render_status_page(store: Store, page: CheckPage, *, now: float, extra_html: str = "",
                       rows: Sequence[str] | None = None) -> str:
    """``extra_html``: sections other parts render (and escape) themselves: the broken accounts files.
    ``rows``: the checks' rows already rendered (:func:`row_html`, a few per loop turn); else here."""
    flt = page.filter
    totals = {state: 0 for state in STATES}
    for row in page.summary:
        for state in STATES:
            totals[state] += getattr(row, state)
    head = "".join(f"<th>{escape(en)}<small>{escape(zh)}</small></th>" for en, zh in _COLUMNS)
    if rows is None:
        rows = [row_html(store, shown, now) for shown in page.checks]
    rows_html = "\n".join(rows) or (
        f'<tr><td colspan="{len(_COLUMNS)}">no check matches 没有匹配的检查</td></tr>')
    reload_note = "" if page.reload_ok else (
        ' <span class="crit">last config reload FAILED — the previous config is still running'
        " 配置重载失败，仍在使用之前的配置</span>")
    first = (flt.page - 1) * flt.per_page
    shown = (f"{first + 1:,}–{first + len(page.checks):,} of {page.total:,} 共 {page.total:,} 项"
             if page.checks else f"0 of {page.total:,}")
    summary = " ".join(f'<span class="{_STATE_CSS[s]}">{totals[s]:,} {escape(_STATE_NAMES[s])}</span>'
                       for s in STATES)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>marketplace-exporter: {totals["failing"]:,} failing</title><style>{_CSS}</style></head>
<body><h1>marketplace-exporter <small class="muted">{escape(__version__)}</small></h1>
<p class="meta">Probes run in the background on each check's interval; this page refreshes every
{REFRESH_SECONDS}s. <a href="metrics">/metrics</a> · <a href="{_api_url(flt)}">JSON</a>
· 后台定时探测，页面每 {REFRESH_SECONDS} 秒刷新。{reload_note}</p>
<p class="summary">{summary}</p>{extra_html}
{_counts(page)}
{_form(store, flt)}
<h2>Checks 检查 <small class="muted">{shown}</small></h2>
{_pager(page)}
<table class="checks"><thead><tr>{head}</tr></thead><tbody>
{rows_html}
</tbody></table>
{_pager(page)}</body></html>
"""


def _api_url(flt: CheckFilter) -> str:
    return escape("api/v1/checks?" + urlencode(flt.params()))


def _link(flt: CheckFilter, text: str, **changes: object) -> str:
    return f'<a href="?{escape(urlencode(flt.params(**changes)))}">{text}</a>'


def _counts(page: CheckPage) -> str:
    if not page.summary:
        return ""
    base = CheckFilter(per_page=page.filter.per_page)
    head = "".join(f"<th>{escape(en)}<small>{escape(zh)}</small></th>" for en, zh in (
        ("marketplace", "平台"), ("site", "站点"), ("failing", "失败"), ("expiring", "即将到期"),
        ("pending", "等待"), ("ok", "正常"), ("total", "合计")))
    body = []
    for row in page.summary:
        where = {"marketplace": row.marketplace, "site": row.site}
        cells = [_link(base, escape(row.marketplace), marketplace=row.marketplace), escape(row.site)]
        for state in STATES:
            count = getattr(row, state)
            cells.append(_link(base, f'<span class="{_STATE_CSS[state]}">{count:,}</span>', state=state, **where)
                         if count else '<span class="muted">0</span>')
        cells.append(_link(base, f"{row.total:,}", **where))
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return (f'<h2>Summary 概览</h2><div class="scroll"><table class="counts"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _form(store: Store, flt: CheckFilter) -> str:
    pairs = store.index.marketplaces_and_sites()

    def select(name: str, label: str, options: list[tuple[str, str]], current: str | None) -> str:
        opts = "".join(
            f'<option value="{escape(value)}"{" selected" if value == current else ""}>{escape(text)}</option>'
            for value, text in [("", "any 全部"), *options])
        return f'<label>{label}<select name="{name}">{opts}</select></label>'

    marketplaces = sorted({m for m, _ in pairs})
    sites = sorted({s for m, s in pairs if flt.marketplace is None or m == flt.marketplace})
    per_page = "" if flt.per_page == PER_PAGE else (
        f'<input type="hidden" name="per_page" value="{flt.per_page}">')
    return ('<form method="get" action=".">'
            + select("marketplace", "marketplace 平台", [(m, m) for m in marketplaces], flt.marketplace)
            + select("site", "site 站点", [(s, s) for s in sites], flt.site)
            + select("state", "state 状态", [(s, _STATE_NAMES[s]) for s in STATES], flt.state)
            + f'<label>search 搜索<input type="search" name="q" value="{escape(flt.q or "")}" '
              'placeholder="marketplace/account/check"></label>'
            + per_page + '<button type="submit">Filter 筛选</button> '
            + (_link(CheckFilter(), "clear 清除") if flt != CheckFilter() else "") + "</form>")


def _pager(page: CheckPage) -> str:
    flt = page.filter
    if page.pages <= 1:
        return ""
    links = []
    if flt.page > 1:
        links += [_link(flt, "« first 首页", page=None), _link(flt, "‹ previous 上一页", page=flt.page - 1)]
    links.append(f"page {flt.page:,} of {page.pages:,} 第 {flt.page:,}/{page.pages:,} 页")
    if flt.page < page.pages:
        links += [_link(flt, "next 下一页 ›", page=flt.page + 1), _link(flt, "last 末页 »", page=page.pages)]
    return f'<nav class="pages">{" ".join(links)}</nav>'


def row_html(store: Store, shown: ShownCheck, now: float) -> str:
    """One check's table row (a card on a phone)."""
    state = shown.status
    spec = state.spec
    cells = [spec.marketplace, spec.site, spec.account, spec.name]
    html_cells = [escape(value) for value in cells]
    last = state.last
    if last is None:
        status = '<span class="muted">pending</span>'
        if state.last_skip_at is not None:
            status = '<span class="wait">waiting for quota budget</span>'
        latency, failure, last_run = "–", "", "never"
    else:
        outcome = last.outcome
        status = ('<span class="ok">OK</span>' if outcome.success
                  else f'<span class="fail">FAIL</span> <code>{escape(str(outcome.reason))}</code>')
        if state.last_skip_at is not None and state.last_skip_at > last.finished_at:
            status += ' <span class="wait">(quota budget: waiting)</span>'
        latency = f"{last.duration * 1000:.0f} ms"
        if outcome.http_status:
            latency += f' <span class="muted">HTTP {outcome.http_status}</span>'
        failure = "" if outcome.success else _failure_text(outcome.code, outcome.message)
        last_run = f"{format_duration(max(1, round(now - last.finished_at)))} ago"
    held = held_back_until(state, now)
    if held is not None:
        status += f' <span class="wait">{escape(held_note(state, held, now))}</span>'
    elif state.next_run_at is not None and state.next_run_at > now:
        last_run += f" · next in {format_duration(max(1, round(state.next_run_at - now)))}"
    html_cells += [status, latency, failure, _expiry(store, shown, now), _headroom(shown), escape(last_run)]
    return "<tr>" + "".join(
        f'<td data-label="{escape(en)} {escape(zh)}">{cell}</td>'
        for (en, zh), cell in zip(_COLUMNS, html_cells, strict=True)) + "</tr>"


def held_back_until(state: CheckStatus, now: float) -> float | None:
    """When the next probe runs, if the platform's Retry-After (or an adapter's pause after a
    failure, Ozon's after auth errors) is what holds the check back now; else None."""
    last = state.last
    if (last is None or last.outcome.success or last.outcome.retry_after_seconds is None
            or state.next_run_at is None or state.next_run_at <= now):
        return None
    return state.next_run_at


def held_note(state: CheckStatus, until: float, now: float) -> str:
    """"throttled by the platform, next probe at 14:05:00 UTC (in 12m)" for the page and the API."""
    outcome = state.last.outcome if state.last is not None else None
    reason = outcome.reason if outcome is not None else None
    who = ("throttled by the platform" if reason is Reason.THROTTLED
           else f"paused after this {reason.value if reason is not None else ''} failure")
    at = time.strftime("%H:%M:%S UTC", time.gmtime(until))
    return f"{who}, next probe at {at} (in {format_duration(max(1, round(until - now)))})"


def _failure_text(code: str | None, message: str) -> str:
    # most adapters already name the code in their message; show it once
    code_html = f'<code class="wrap">{escape(code)}</code> ' if code and code not in message else ""
    return code_html + escape(message[:200])


def _expiry(store: Store, shown: ShownCheck, now: float) -> str:
    spec = shown.status.spec
    parts = []
    for (_, _, _, credential), expires_at in store.credentials((spec.marketplace, spec.site, spec.account)):
        left = expires_at - now
        if credential is Credential.ACCESS_TOKEN:
            # access tokens live minutes to days and are renewed routinely (by the exporter or by
            # production): only an expired one is news; alert rules judge renewal failures
            css = "crit" if left <= 0 else "muted"
        else:
            css = "crit" if left < 86400 else "warn" if left < 7 * 86400 else "muted"
        text = "EXPIRED" if left <= 0 else f"in {_countdown(left)}"
        parts.append(f'<span class="{css}">{escape(credential.value)} {escape(text)}</span>')
    return "<br>".join(parts) or '<span class="muted">–</span>'


def _countdown(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 60:.0f}m"


def _headroom(shown: ShownCheck) -> str:
    state = shown.status
    observed = state.observed_rate_limit
    if observed is not None and observed.remaining_ratio is not None:
        return f"{observed.remaining_ratio:.0%} <span class=\"muted\">{escape(observed.source.value)}</span>"
    if observed is not None and observed.remaining is not None:
        return f"{observed.remaining:g} left <span class=\"muted\">{escape(observed.source.value)}</span>"
    if state.modelled_ratio is not None:
        return f"{state.modelled_ratio:.0%} <span class=\"muted\">modelled</span>"
    return '<span class="muted">not reported</span>'
