"""The status page at ``/``: one row per check, worst first, refreshed every 5 seconds.

Server-rendered HTML with no script (the page's CSP forbids it): every value passes through
``html.escape``, including texts that came from a marketplace response. Headers are bilingual
because many of our users read Chinese first. Under 700 px wide the table turns into one card per
check so it reads on a phone.
"""

from __future__ import annotations

from html import escape

from marketplace_exporter import __version__
from marketplace_exporter.catalogue import Credential
from marketplace_exporter.durations import format_duration
from marketplace_exporter.store import CheckState, Store

REFRESH_SECONDS = 5

_COLUMNS = (
    ("marketplace", "平台"), ("site", "站点"), ("account", "账号"), ("check", "检查"),
    ("status", "状态"), ("latency", "延迟"), ("last failure", "最近失败"),
    ("credential expiry", "凭证到期"), ("rate-limit headroom", "限流余量"), ("last run", "上次运行"),
)

_CSS = """
*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:1rem;color:#1b1f24}
h1{font-size:1.3rem;margin:0 0 .3rem}p.meta{color:#57606a;margin:.2rem 0 1rem;font-size:.9rem}
.summary span{display:inline-block;margin-right:1rem;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}
th small{display:block;color:#57606a;font-weight:normal}
.ok{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}.wait{color:#9a6700;font-weight:600}
.warn{color:#9a6700}.crit{color:#cf222e;font-weight:600}.muted{color:#57606a}
code{font-size:.85em;white-space:nowrap}code.wrap{white-space:normal;overflow-wrap:anywhere}
@media (max-width:700px){
 table,tbody,tr,td{display:block;width:100%}thead{display:none}
 tr{border:1px solid #d0d7de;border-radius:6px;margin:0 0 .8rem;padding:.3rem}
 td{border:none;padding:.2rem .4rem;overflow-wrap:anywhere}
 td::before{content:attr(data-label);display:inline-block;min-width:9.5rem;margin-right:.6rem;color:#57606a}
}
"""


def render_status_page(store: Store, *, now: float, extra_html: str = "") -> str:
    """``extra_html``: sections other parts render themselves (the broken accounts files)."""
    states = sorted(store.checks.values(), key=lambda s: (_rank(s), s.spec.id))
    failing = sum(1 for s in states if s.last is not None and not s.last.outcome.success)
    passing = sum(1 for s in states if s.last is not None and s.last.outcome.success)
    pending = len(states) - failing - passing
    head = "".join(f"<th>{escape(en)}<small>{escape(zh)}</small></th>" for en, zh in _COLUMNS)
    rows = "\n".join(_row(store, state, now) for state in states) or (
        f'<tr><td colspan="{len(_COLUMNS)}">no checks configured</td></tr>')
    reload_note = "" if store.reload_successful else (
        ' <span class="crit">last config reload FAILED — the previous config is still running</span>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>marketplace-exporter: {failing} failing</title><style>{_CSS}</style></head>
<body><h1>marketplace-exporter <small class="muted">{escape(__version__)}</small></h1>
<p class="meta">Probes run in the background on each check's interval; this page refreshes every
{REFRESH_SECONDS}s. <a href="/metrics">/metrics</a> · 后台定时探测，页面每 {REFRESH_SECONDS} 秒刷新。{reload_note}</p>
<p class="summary"><span class="fail">{failing} failing 失败</span><span class="ok">{passing} ok 正常</span>
<span class="muted">{pending} pending 等待</span></p>{extra_html}
<table><thead><tr>{head}</tr></thead><tbody>
{rows}
</tbody></table></body></html>
"""


def _rank(state: CheckState) -> int:
    if state.last is None:
        return 1
    return 0 if not state.last.outcome.success else 2


def _row(store: Store, state: CheckState, now: float) -> str:
    spec = state.spec
    cells = [spec.marketplace, spec.site, spec.account, spec.name]
    html_cells = [escape(value) for value in cells]
    last = state.last
    if last is None:
        status = '<span class="muted">pending</span>'
        if state.skipped and state.last_skip_at is not None:
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
    if state.next_run_at is not None and state.next_run_at > now:
        last_run += f" · next in {format_duration(max(1, round(state.next_run_at - now)))}"
    html_cells += [status, latency, failure, _expiry(store, state, now), _headroom(state), escape(last_run)]
    return "<tr>" + "".join(
        f'<td data-label="{escape(en)} {escape(zh)}">{cell}</td>'
        for (en, zh), cell in zip(_COLUMNS, html_cells, strict=True)) + "</tr>"


def _failure_text(code: str | None, message: str) -> str:
    # most adapters already name the code in their message; show it once
    code_html = f'<code class="wrap">{escape(code)}</code> ' if code and code not in message else ""
    return code_html + escape(message[:200])


def _expiry(store: Store, state: CheckState, now: float) -> str:
    spec = state.spec
    parts = []
    for (marketplace, site, account, credential), expires_at in sorted(store.credentials.items()):
        if (marketplace, site, account) != (spec.marketplace, spec.site, spec.account):
            continue
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


def _headroom(state: CheckState) -> str:
    observed = state.observed_rate_limit
    if observed is not None and observed.remaining_ratio is not None:
        return f"{observed.remaining_ratio:.0%} <span class=\"muted\">{escape(observed.source.value)}</span>"
    if observed is not None and observed.remaining is not None:
        return f"{observed.remaining:g} left <span class=\"muted\">{escape(observed.source.value)}</span>"
    if state.modelled_ratio is not None:
        return f"{state.modelled_ratio:.0%} <span class=\"muted\">modelled</span>"
    return '<span class="muted">not reported</span>'
