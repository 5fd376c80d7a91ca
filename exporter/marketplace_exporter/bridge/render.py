"""Pure rendering: queued notifications → one chat message (title, markdown text, mentions) in the
receiver's language and time zone, cut to the channel's byte limit.

No I/O and no clock: the same input gives the same bytes (golden tests pin them). The channel says
how many bytes a text costs once it is inside the real request body (:class:`Budget`), so the
limit is checked against what is really sent — DingTalk's 20,000-byte JSON body, WeCom's
4,096-byte markdown ``content``, Feishu's 20 KB body — and a text is never cut inside a UTF-8
character. When alerts do not fit, whole alerts are dropped from the end and a footer says how
many (``… 另有 N 条告警未显示`` / ``… and N more``).

Sample (zh, DingTalk)::

    #### 🔥 告警 MarketplaceCheckFailing
    **[告警] MarketplaceCheckFailing** · critical
    - 摘要: 市场检查连续失败 3 次以上。
    - 原因: auth · 平台错误码: Unauthorized
    - 标签: account=us-main, marketplace=amazon_sp
    - 开始: 2024-05-01 18:00:00 CST
    - [Grafana](http://grafana:3000) | [处理手册](https://…/runbooks.md#…) | [静默 Silence](http://am:9093/#/silences/new?filter=…)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from marketplace_exporter.bridge.alertmanager import Alert, Notification
from marketplace_exporter.bridge.chat_text import choose_mentions, link_target, plain, split_list

ELLIPSIS = "…"

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "firing": "告警", "resolved": "已恢复", "severity": "级别", "summary": "摘要",
        "description": "详情", "labels": "标签", "started": "开始", "ended": "结束",
        "reason": "原因", "code": "平台错误码",
        "grafana": "Grafana", "runbook": "处理手册", "silence": "静默", "source": "查询",
        "more": "… 另有 {n} 条告警未显示（超出消息长度限制）",
        "merged": "合并 {n} 条通知", "am_truncated": "Alertmanager 另截断了 {n} 条告警",
        "mentions_more": "另有 {n} 人未 @（每条消息最多 @ {limit} 人）",
        "title": "{icon} {status} {name}", "title_merged": "{icon} {status} {name} 等（{n} 条）",
    },
    "en": {
        "firing": "FIRING", "resolved": "RESOLVED", "severity": "severity", "summary": "summary",
        "description": "description", "labels": "labels", "started": "started", "ended": "ended",
        "reason": "reason", "code": "platform code",
        "grafana": "Grafana", "runbook": "Runbook", "silence": "Silence", "source": "Query",
        "more": "… and {n} more (message size limit)",
        "merged": "{n} notifications merged", "am_truncated": "Alertmanager truncated {n} more alerts",
        "mentions_more": "and {n} more not mentioned (at most {limit} per message)",
        "title": "{icon} {status} {name}", "title_merged": "{icon} {status} {name} and more ({n})",
    },
}
ICONS = {"firing": "🔥", "resolved": "✅"}
#: labels not repeated in the label list (they are shown elsewhere)
_SHOWN_ELSEWHERE = ("alertname", "severity")


@dataclass(frozen=True)
class RenderOptions:
    """What the receiver config decides about the look of a message."""

    channel: str
    language: str
    timezone: ZoneInfo
    grafana_url: str | None = None
    alertmanager_url: str | None = None
    runbook_base_url: str | None = None
    mobiles: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    at_all: bool = False
    mobiles_from: tuple[str, ...] = ()
    user_ids_from: tuple[str, ...] = ()
    #: who alerts may add through mobiles_from / user_ids_from (anyone else is not mentioned)
    allowed_mobiles: tuple[str, ...] = ()
    allowed_user_ids: tuple[str, ...] = ()
    #: people mentioned per message at most (the rest are counted in ``Mentions.more``)
    max_mentions: int = 20
    #: a robot's security keyword (DingTalk/Feishu 自定义关键词): put in front of the title when absent
    keyword: str | None = None


@dataclass(frozen=True)
class Budget:
    """How a channel counts bytes: ``overhead`` bytes of body around the text, and whether the
    text is counted JSON-escaped (inside a JSON body) or as raw UTF-8 (WeCom's content limit)."""

    limit: int
    overhead: int = 0
    json_escaped: bool = True

    def cost(self, text: str) -> int:
        if self.json_escaped:
            return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2
        return len(text.encode("utf-8"))

    @property
    def room(self) -> int:
        return self.limit - self.overhead


@dataclass(frozen=True)
class Mentions:
    mobiles: tuple[str, ...]
    user_ids: tuple[str, ...]
    at_all: bool
    #: people who would have been mentioned past ``RenderOptions.max_mentions``
    more: int = 0


@dataclass(frozen=True)
class Message:
    title: str
    text: str
    status: str
    mentions: Mentions
    alerts_total: int
    alerts_shown: int


def render(notifications: Sequence[Notification], options: RenderOptions,
           budget_for: Callable[[str, Mentions], Budget]) -> Message:
    """Render one or more notifications (several when queued ones are merged) as one message."""
    t = TEXTS[options.language]
    alerts = [alert for n in notifications for alert in n.alerts]
    status = "firing" if any(n.status == "firing" for n in notifications) else "resolved"
    first = notifications[0]
    name = first.groupLabels.get("alertname") or first.commonLabels.get("alertname") or alerts[0].name
    title_key = "title" if len(notifications) == 1 else "title_merged"
    title = t[title_key].format(icon=ICONS[status], status=t[status], name=_md(name), n=len(notifications))
    if options.keyword and options.keyword not in title:
        title = f"{options.keyword} {title}"
    mentions = _mentions(alerts, options)
    budget = budget_for(title, mentions)
    header = f"#### {title}\n"
    if len(notifications) > 1:
        header += t["merged"].format(n=len(notifications)) + "\n"
    sections = [_section(alert, n, options, t) for n in notifications for alert in n.alerts]
    tail = ""
    truncated_upstream = sum(n.truncatedAlerts for n in notifications)
    if truncated_upstream:
        tail += "\n" + t["am_truncated"].format(n=truncated_upstream) + "\n"
    tail += _mention_line(mentions, options, t)
    text, shown = fit(header, sections, tail, lambda n: "\n" + t["more"].format(n=n) + "\n", budget)
    return Message(title=title, text=text, status=status, mentions=mentions,
                   alerts_total=len(alerts), alerts_shown=shown)


def fit(header: str, sections: Sequence[str], tail: str, footer_for: Callable[[int], str],
        budget: Budget) -> tuple[str, int]:
    """Join ``header + sections + tail`` within ``budget``; drop whole sections from the end and add
    ``footer_for(dropped)``; when even one section does not fit, cut it at a character boundary.
    Returns the text and how many sections are (at least partly) shown."""
    room = budget.room
    cost = budget.cost
    fixed = cost(header) + cost(tail)
    if fixed > room:  # pathological title/mentions: keep what fits of the header, never overflow
        return cut_to_bytes(header + tail, room, cost), 0
    sizes = [cost(s) for s in sections]
    if fixed + sum(sizes) <= room:
        return header + "".join(sections) + tail, len(sections)
    used = fixed
    shown: list[str] = []
    for index, section in enumerate(sections):
        left_after = len(sections) - index - 1
        footer_next = cost(footer_for(left_after)) if left_after else 0
        if used + sizes[index] + footer_next <= room:
            shown.append(section)
            used += sizes[index]
            continue
        dropped = len(sections) - index
        footer = footer_for(dropped)
        if not shown:
            # not even the first alert fits whole: show its beginning, count the rest
            footer = footer_for(dropped - 1) if dropped > 1 else ""
            part = cut_to_bytes(section, room - used - cost(footer), cost)
            return header + part + footer + tail, 1
        return header + "".join(shown) + footer + tail, len(shown)
    return header + "".join(shown) + tail, len(shown)  # pragma: no cover - the sum check above


def cut_to_bytes(text: str, max_bytes: int, cost: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` (plus ``…`` when cut) whose cost is ≤ ``max_bytes``.
    Works on characters, so a multi-byte UTF-8 character is never split."""
    if cost(text) <= max_bytes:
        return text
    marker = ELLIPSIS + "\n"
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if cost(text[:mid] + marker) <= max_bytes:
            low = mid
        else:
            high = mid - 1
    return text[:low] + marker if cost(text[:low] + marker) <= max_bytes else ""


def _section(alert: Alert, notification: Notification, options: RenderOptions, t: dict[str, str]) -> str:
    lang = options.language
    ann = alert.annotations
    state = t[alert.status]
    if options.channel == "wecom":
        state = f'<font color="{"warning" if alert.status == "firing" else "info"}">{state}</font>'
    severity = alert.labels.get("severity", "")
    head = f"\n**[{state}] {_md(alert.name or notification.groupKey)}**" + (f" · {_md(severity)}" if severity else "")
    lines = [head]
    summary = ann.get(f"summary_{lang}") or ann.get("summary")
    description = ann.get(f"description_{lang}") or ann.get("description")
    if summary:
        lines.append(f"- {t['summary']}: {_md(summary)}")
    if description:
        lines.append(f"- {t['description']}: {_md(description)}")
    cause = _cause(alert, t)
    if cause:
        lines.append(f"- {cause}")
    hidden = (*_SHOWN_ELSEWHERE, *options.mobiles_from, *options.user_ids_from)
    shown = sorted((k, v) for k, v in alert.labels.items() if k not in hidden)
    if shown:
        lines.append(f"- {t['labels']}: " + ", ".join(f"{k}={_md(v)}" for k, v in shown))
    lines.append(f"- {t['started']}: {_time(alert.startsAt, options.timezone)}")
    ended = alert.ended()
    if alert.status == "resolved" and ended is not None:
        lines.append(f"- {t['ended']}: {_time(ended, options.timezone)}")
    links = _links(alert, notification, options, t)
    if links:
        lines.append("- " + " | ".join(links))
    return "\n".join(lines) + "\n"


def _cause(alert: Alert, t: dict[str, str]) -> str:
    """``原因: auth · 平台错误码: invalid_acceess_token``: the failure reason and the platform's own
    error code, from the alert's labels or (the mixin's rules put them there) its annotations."""
    parts = []
    for key in ("reason", "code"):
        value = alert.labels.get(key) or alert.annotations.get(key)
        if value:
            parts.append(f"{t[key]}: {_md(value)}")
    return " · ".join(parts)


def _links(alert: Alert, notification: Notification, options: RenderOptions, t: dict[str, str]) -> list[str]:
    links = []
    # every URL goes through link_target: annotations may carry label values (templated rules) and
    # externalURL/generatorURL come with the payload; a ")" or "<at ...>" must not leave the link
    grafana = link_target(alert.annotations.get("dashboard_url") or alert.annotations.get("grafana_url")
                          or options.grafana_url or "")
    if grafana:
        links.append(f"[{t['grafana']}]({grafana})")
    # the mixin's ``both`` adds the Chinese runbook as runbook_url_zh, as it adds summary_zh
    runbook = alert.annotations.get(f"runbook_url_{options.language}") or alert.annotations.get("runbook_url")
    if runbook:
        if "://" not in runbook and options.runbook_base_url:
            runbook = options.runbook_base_url.rstrip("/") + "/" + runbook.lstrip("/")
        target = link_target(runbook) if "://" in runbook else None
        links.append(f"[{t['runbook']}]({target})" if target else f"{t['runbook']}: {_md(runbook)}")
    am = link_target(options.alertmanager_url or notification.externalURL or "")
    if am and alert.status == "firing":
        links.append(f"[{t['silence']}]({silence_url(am, alert.labels)})")
    source = link_target(alert.generatorURL or "")
    if source:
        links.append(f"[{t['source']}]({source})")
    return links


def silence_url(alertmanager_url: str, labels: dict[str, str]) -> str:
    """Alertmanager's "new silence" page pre-filled with matchers for exactly this alert."""
    matchers = ",".join(f'{k}="{_matcher_value(v)}"' for k, v in sorted(labels.items()))
    return f"{alertmanager_url.rstrip('/')}/#/silences/new?filter={quote('{' + matchers + '}', safe='')}"


def _matcher_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _time(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or zone.key)


def _md(text: str) -> str:
    """One line of plain text that cannot start a heading, list, link, tag or mention
    (:func:`.chat_text.plain`)."""
    return plain(text)


def _mentions(alerts: Sequence[Alert], options: RenderOptions) -> Mentions:
    """The configured people, plus the allowed people alerts name, at most ``max_mentions``."""
    def requested(keys: Sequence[str]) -> list[str]:
        return [person for alert in alerts for key in keys
                for person in split_list(alert.labels.get(key, "")) + split_list(alert.annotations.get(key, ""))]

    mobiles, more_mobiles = choose_mentions(options.mobiles, requested(options.mobiles_from),
                                            options.allowed_mobiles, options.max_mentions)
    user_ids, more_users = choose_mentions(options.user_ids, requested(options.user_ids_from),
                                           options.allowed_user_ids, options.max_mentions - len(mobiles))
    return Mentions(mobiles, user_ids, options.at_all, more_mobiles + more_users)


def _mention_line(mentions: Mentions, options: RenderOptions, t: dict[str, str]) -> str:
    """DingTalk shows a mention only when ``@mobile`` is also in the text; WeCom markdown uses
    ``<@userid>``; Feishu card markdown ``<at id=...></at>``. Past the cap: "and N more"."""
    parts = _mention_parts(mentions, options.channel)
    if parts and mentions.more:
        parts.append(t["mentions_more"].format(n=mentions.more, limit=options.max_mentions))
    return ("\n" + " ".join(parts) + "\n") if parts else ""


def _mention_parts(mentions: Mentions, channel: str) -> list[str]:
    if channel == "dingtalk":
        parts = [f"@{m}" for m in mentions.mobiles] + [f"@{u}" for u in mentions.user_ids]
    elif channel == "wecom":
        parts = [f"<@{u}>" for u in mentions.user_ids]
    elif channel == "feishu":
        parts = [f"<at id={u}></at>" for u in mentions.user_ids]
        if mentions.at_all:
            parts.append("<at id=all></at>")
    else:
        parts = []
    return parts
