"""Bilingual dashboards: the Chinese beside every English title, added when the JSON is generated.

Why bilingual titles and not a ``--lang zh`` generation: a team shares one dashboard (one uid, the
drill-down links, the alerts' dashboard links and the deploy annotations' ``dashboard_uid`` all point
at it), and the people on it — an SRE in Shenzhen, an ERP vendor's developer abroad — read
different first languages. Two generated sets would double the committed JSON and the live query
test, and let the two copies drift. So every panel title reads ``中文 · English`` (Chinese first:
it is the shorter half, and most readers read it first); dashboard titles keep their English
``Marketplace exporter / …`` first so the five stay together in Grafana's list.

The sources (``*.dashboard.py``) stay English; :func:`translate` rewrites the rendered model. A title
without a Chinese entry stops the generation (naming it), and ``generate.py`` reports an entry no
dashboard uses any more, so the two languages cannot drift. tests/unit/test_dashboards.py checks
that every title is bilingual and fits its panel's width.
"""

from __future__ import annotations

from typing import Any

SEPARATOR = " · "

#: panel titles, as the ``*.dashboard.py`` files write them
PANELS: dict[str, str] = {
    # overview
    "Checks failing now": "当前失败检查项",
    "Probe success ratio": "探测成功率",
    "Probes stale": "过时的探测",
    "Alerts firing": "触发中告警数",
    "Credentials due in 7d": "7 天内到期凭证",
    "Certificates due in 7d": "7 天内到期证书",
    "Health matrix: marketplace × site": "健康矩阵：平台 × 站点",
    "Failing checks: time since last success": "失败检查项：距上次成功",
    "Failing checks: why (failure reasons, last 15 min)": "失败检查项：失败原因（近 15 分钟）",
    "Failing checks: the platform's codes (last 15 min)": "失败检查项：平台错误码（近 15 分钟）",
    "Probe success by marketplace and site": "各平台、站点的探测成功率",
    "SLO error-budget burn rate (99% probe success)": "SLO 错误预算消耗速率（探测成功率 99%）",
    "Top failure reasons (time range)": "主要失败原因（所选时段）",
    "Top platform error codes (time range)": "主要平台错误码（所选时段）",
    "Firing alerts": "触发中的告警",
    "Latest deploys": "最近的部署",
    # marketplace
    "Checks failing": "失败检查项",
    "Success now": "当前状态",
    "Quota-budget skips (time range)": "因配额预算跳过（所选时段）",
    "Probe success": "探测成功",
    "API latency percentiles": "API 延迟分位数",
    "Probe duration (all steps)": "探测耗时（含所有步骤）",
    "HTTP status of the last probe": "最近一次探测的 HTTP 状态码",
    "Failures by reason": "失败次数（按原因）",
    "Platform error codes": "平台错误码",
    "Rate-limit headroom (remaining ratio)": "限流余量（剩余比例）",
    "Rate-limit requests remaining": "限流窗口剩余请求数",
    "Prober's own requests per hour, by step": "探测自身每小时请求数（按步骤）",
    "Quota-budget skips": "因配额预算跳过",
    "Rate-limit window resets in": "限流窗口重置倒计时",
    "Values extracted by HTTP checks": "HTTP 检查提取的数值",
    "Production calls reported, by status class": "上报的生产调用（按状态类别）",
    "Production errors by reason and code": "生产错误（按原因和错误码）",
    "Production latency p90 by operation": "生产延迟 p90（按操作）",
    "Production rate-limit headroom": "生产限流余量",
    "Production requests left in the rate-limit window": "生产限流窗口剩余请求数",
    # credentials
    "Credentials expiring within 7 days": "7 天内到期的凭证",
    "TLS certificates expiring within 7 days": "7 天内到期的 TLS 证书",
    "APIs removed within 90 days": "90 天内下线的 API",
    "Credentials by time to expiry": "凭证到期倒计时",
    "TLS certificates by time to expiry": "TLS 证书到期倒计时",
    "API deprecation dates": "API 下线日期",
    # deploys
    "Deploys (time range)": "部署次数（所选时段）",
    "Failed or rolled back (time range)": "失败或回滚（所选时段）",
    "Deploys during a freeze (time range)": "冻结期内部署（所选时段）",
    "Environments frozen now": "当前冻结的环境",
    "Deploy timeline": "部署时间线",
    "Current version per service and environment": "各服务、环境的当前版本",
    "Probe error ratio around deploys": "部署前后的探测错误率",
    "Error ratio: last 30 min vs the 30 min before": "错误率：近 30 分钟 vs 之前 30 分钟",
    "Post-deploy verification results": "发布后验证结果",
    "Freeze windows": "冻结窗口",
    "Deploy markers by status (time range)": "部署标记（按状态，所选时段）",
    "Grafana annotation pushes": "Grafana 注解推送",
    # exporter
    "Exporter up": "Exporter 运行状态",
    "Last config reload": "上次配置重载",
    "Config loaded": "配置加载状态",
    "Broken accounts files": "出错的店铺文件",
    "Probes > 1 s late": "探测延迟超 1 秒占比",
    "Bridge delivery failures": "桥接投递失败",
    "Probe lateness percentiles": "探测启动延迟分位数",
    "Scrape duration and samples": "抓取耗时与样本数",
    "Probes per second (all checks)": "每秒探测次数（全部检查项）",
    "Config reloads": "配置重载",
    "Build": "构建信息",
    "Check tags (alert routing)": "检查项标签（告警路由）",
    "Bridge queue depth": "桥接队列深度",
    "Bridge deliveries and failures": "桥接投递与失败",
    "Bridge delivery latency p90": "桥接投递延迟 p90",
    "Traffic records": "流量记录",
}

#: table value columns (``value_title``), also the ``sortBy`` name Grafana matches them by
COLUMNS: dict[str, str] = {
    "healthy": "健康", "since last success": "距上次成功", "failures": "失败次数", "errors": "错误数",
    "firing": "触发中", "ago": "距今", "expires in": "剩余时间", "removed in": "距下线",
    "deployed": "距部署", "deploys": "部署次数",
}

#: template variable labels
VARIABLES: dict[str, str] = {
    "Data source": "数据源", "Marketplace": "平台", "Site": "站点", "Account": "店铺", "Check": "检查项",
    "Service": "服务", "Environment": "环境", "Job": "抓取任务",
}

#: the part after ``Marketplace exporter / `` of each dashboard title
DASHBOARDS: dict[str, str] = {
    "Overview": "总览", "Marketplace": "平台下钻", "Credentials": "凭证", "Deploys": "部署",
    "Exporter": "自身健康",
}

#: data link titles and annotation names
OTHERS: dict[str, str] = {"Open in the Marketplace drill-down": "在平台下钻中打开", "Deploys": "部署"}

_TABLES = {"panel title": PANELS, "table column": COLUMNS, "variable label": VARIABLES,
           "dashboard title": DASHBOARDS, "link or annotation": OTHERS}
#: (table name, English) pairs :func:`translate` looked up, for :func:`unused`
_USED: set[tuple[str, str]] = set()


def chinese(english: str, what: str) -> str:
    """The Chinese for ``english`` from the table for ``what``; stops the generation when there is none."""
    table = _TABLES[what]
    if english not in table:
        raise SystemExit(f"dashboards/titles_zh.py: no Chinese for the {what} {english!r}; add it")
    _USED.add((what, english))
    return table[english]


def both(english: str, what: str) -> str:
    """``中文 · English``."""
    return f"{chinese(english, what)}{SEPARATOR}{english}"


def translate(data: dict[str, Any]) -> dict[str, Any]:
    """The rendered dashboard with every visible English title made bilingual (in place, returned)."""
    prefix, _, name = data["title"].rpartition(" / ")
    data["title"] = f"{prefix} / {name}{SEPARATOR}{chinese(name, 'dashboard title')}"
    for panel in data["panels"]:
        panel["title"] = both(panel["title"], "panel title")
        for step in panel.get("transformations", []):
            renames = step.get("options", {}).get("renameByName", {})
            for column, title in renames.items():
                if title != column:  # "Value" kept as "Value" is not a title
                    renames[column] = both(title, "table column")
        for sort in panel.get("options", {}).get("sortBy", []):
            if sort["displayName"] in COLUMNS:
                sort["displayName"] = both(sort["displayName"], "table column")
        for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", []):
            link["title"] = both(link["title"], "link or annotation")
    for variable in data["templating"]["list"]:
        if variable.get("label"):
            variable["label"] = both(variable["label"], "variable label")
    for annotation in data["annotations"]["list"]:
        if not annotation.get("builtIn"):
            annotation["name"] = both(annotation["name"], "link or annotation")
    return data


def unused() -> list[str]:
    """Entries no dashboard looked up since the module was loaded (renamed or removed titles)."""
    return sorted(f"{what}: {english!r}" for what, table in _TABLES.items() for english in table
                  if (what, english) not in _USED)
