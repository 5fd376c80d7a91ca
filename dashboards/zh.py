"""Bilingual dashboards: the Chinese beside every English title and description, added when the JSON
is generated.

Why bilingual titles and not a ``--lang zh`` generation: a team shares one dashboard (one uid, the
drill-down links, the alerts' dashboard links and the deploy annotations' ``dashboard_uid`` all point
at it), and the people on it — an SRE in Shenzhen, an ERP vendor's developer abroad — read
different first languages. Two generated sets would double the committed JSON and the live query
test, and let the two copies drift. So every panel title reads ``中文 · English`` (Chinese first:
it is the shorter half, and most readers read it first); dashboard titles keep their English
``Marketplace exporter / …`` first so the five stay together in Grafana's list.

Panel descriptions (the ⓘ tooltip, no width limit) read the Chinese, a blank line, the English.

The sources (``*.dashboard.py``) stay English; :func:`translate` rewrites the rendered model. A title
or description without a Chinese entry stops the generation (naming it), so does a description whose
English changed since it was translated (a fingerprint, as a gettext ``fuzzy`` mark), and
``generate.py`` reports an entry no dashboard uses any more, so the two languages cannot drift.
tests/unit/test_dashboards.py checks that every title is bilingual and fits its panel's width.
"""

from __future__ import annotations

import hashlib
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
    "Markers refused by the caps": "超出上限被拒的部署标记",
    # exporter
    "Exporter up": "Exporter 运行状态",
    "Exporter shards": "Exporter 分片数",
    "Shards missing": "缺失的分片",
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
    "Bridge build": "桥接服务构建信息",
    "Check tags (alert routing)": "检查项标签（告警路由）",
    "Bridge queue depth": "桥接队列深度",
    "Bridge deliveries and failures": "桥接投递与失败",
    "Bridge delivery latency p90": "桥接投递延迟 p90",
    "Traffic records": "流量记录",
}

#: panel descriptions (the ⓘ tooltip), by panel title: (fingerprint of the English description, the
#: Chinese). The fingerprint (first 8 hex digits of its SHA-256) makes an edited English description
#: stop the generation until its Chinese is updated too. Shown as the Chinese, a blank line, the English.
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    # overview
    "Checks failing now": ("c553181d", "最近一次后台探测失败的检查项。"),
    "Probe success ratio": ("e144c704", "所选时段内探测成功的比例。"),
    "Probes stale": ("80579103", "最近一次探测结束已超过三个间隔的检查项（调度卡住，或被配额预算压住）。"),
    "Alerts firing": ("a48d78c8", "Prometheus 当前判定为触发中的告警（来自 alert-rules/ 中生成的规则）。"),
    "Credentials due in 7d": ("9deb0835", "一周内到期的令牌、密钥和授权：详见 Credentials 凭证仪表盘。"),
    "Certificates due in 7d": ("1389b391", "被探测（或额外配置）的主机中一周内到期的 TLS 证书。"),
    "Health matrix: marketplace × site": (
        "9c070bc3", "该平台和站点的所有检查项最近一次探测都成功时为 OK，有任何一个失败即为 FAILING；"
                    "空格表示该站点没有检查项。"),
    "Failing checks: time since last success": (
        "2b12a1c2", "当前所有失败的检查项，失败最久的排在最前（从未成功过的检查项不显示）。"
                    "点击一行进入 Marketplace 平台下钻。"),
    "Failing checks: why (failure reasons, last 15 min)": (
        "4646e59b", "对每个当前失败的检查项：最近 15 分钟内其探测失败的原因。"),
    "Failing checks: the platform's codes (last 15 min)": (
        "5f26d98e", "对每个当前失败的检查项：最近 15 分钟内平台自己的错误码（超时等传输层失败没有错误码）。"),
    "SLO error-budget burn rate (99% probe success)": (
        "8fbad58a", "各平台消耗错误预算的速度：1 表示 30 天恰好用完预算；1 小时窗口 14.4、6 小时窗口 6 会呼叫值班"
                    "（alert-rules/ 中的消耗速率告警）。数据来自记录规则 marketplace:probe_error_ratio:rate<window>。"),
    "Top failure reasons (time range)": (
        "b08b8eda", "按原因统计的失败探测（封闭集合：timeout、connect、tls、auth、permission、throttled、"
                    "server_error、client_error、invalid_response、assertion_failed、internal）。"),
    "Top platform error codes (time range)": ("1a37ab5f", "探测遇到的平台自己的错误码；未知错误码归入 'other'。"),
    "Firing alerts": ("ba70ba11", "当前所有触发中的告警及其标签（severity、marketplace、site、account、check……）。"),
    "Latest deploys": (
        "f46daf4c", "每个服务、环境和状态最近一次的部署标记，最新的在前：与左侧的“距上次成功”对照。"
                    "时间序列图上的紫色标记就是这些部署。"),
    # marketplace
    "Success now": ("916ece26", "所选检查项中任何一个最近一次探测失败时为 0。"),
    "Quota-budget skips (time range)": ("d5d1026a", "因 exporter 在限流值中的份额已用完而未发出的到期探测。"),
    "API latency percentiles": ("65de83a1", "来自 marketplace_request_duration_seconds 直方图（不含换取令牌）。"),
    "HTTP status of the last probe": ("04d42e97", "没有收到响应时为 0（超时、连接失败、TLS）。"),
    "Rate-limit headroom (remaining ratio)": (
        "11615a17", "observed：平台上报的值；modelled：根据公开的速率/突发值和我们自己的消耗计算。"),
    "Rate-limit requests remaining": ("23b3deab", "当前窗口内的剩余请求数（仅限平台有上报时）。"),
    "Prober's own requests per hour, by step": ("1e5f669c", "监控本身消耗的平台配额（换取令牌和 API 调用）。"),
    "Rate-limit window resets in": ("72a9078c", "平台给出的限流窗口重置或下一个令牌到达的时间（仅限平台有给出时）。"),
    "Values extracted by HTTP checks": (
        "26ce9bd1", "通用 HTTP 检查从 JSON 或响应头中读取的数值（例如距上次订单同步的秒数）。"),
    "Production calls reported, by status class": (
        "34356144", "卖家自己的系统发出并上报的 API 调用；'error' 表示没有收到响应。"),
    "Production errors by reason and code": ("2829cd6f", "上报的生产失败，由与探测相同的适配器代码分类。"),
    "Production rate-limit headroom": (
        "1a38326f", "窗口剩余比例，仅在平台同时上报剩余数和窗口大小时存在（见 docs/traffic.md：目前没有平台这样做）。"),
    "Production requests left in the rate-limit window": (
        "a11f63c7", "最近一次生产响应上报的剩余请求数（Walmart 的 x-current-token-count、Wish 的 "
                    "Wish-Rate-Limit-Remaining）；为 0 表示下一次调用会被限流，直到额度恢复。"),
    # credentials
    "Credentials by time to expiry": (
        "3c73fad0", "所有凭证（访问/刷新令牌、应用密钥、授权），最先到期的在前：不足 7 天为橙色，不足 1 天为红色。"),
    "TLS certificates by time to expiry": (
        "6e861122", "被探测（或额外配置）的主机所出示的证书：不足 7 天为橙色，不足 1 天为红色。"),
    "API deprecation dates": ("468d27ea", "你所依赖的平台 API 及其下线时间：不足 90 天为橙色，不足 30 天为红色。"),
    # deploys
    "Deploys (time range)": ("66a56935", "所选时段内记录的部署标记（所有状态）。"),
    "Deploys during a freeze (time range)": (
        "1a5d9bb0", "所属环境处于冻结窗口（双 11、黑五……）期间记录的部署标记：照常记录并标记，从不拒绝。"),
    "Deploy timeline": (
        "20e95934", "按服务、环境和状态（started、succeeded、failed、rolled_back）统计的每个区间的部署标记数。"),
    "Current version per service and environment": ("f7c20420", "每个服务和环境最近一次部署：版本、提交号和距今多久。"),
    "Probe error ratio around deploys": (
        "02122366", "各平台探测失败的比例；紫色标记是部署：某个标记之后紧接着的上升，就是最值得怀疑的那次部署。"),
    "Error ratio: last 30 min vs the 30 min before": (
        "f67e558f", "任一时刻截至该时刻 30 分钟内的错误率，与再之前 30 分钟的对比：在部署标记 30 分钟后读取，"
                    "即为 verify 门禁所做的前后对比。"),
    "Post-deploy verification results": (
        "2141777e", "按结果统计的 `marketplace-exporter verify` 运行次数：pass、fail（部署后错误增多）、"
                    "undecided（数据太少）。"),
    "Freeze windows": ("645718c8", "配置的冻结窗口覆盖该环境期间显示 FROZEN。"),
    "Grafana annotation pushes": (
        "48ee2a90", "配置后 exporter 推送到 Grafana HTTP API 的部署注解（推送失败从不阻塞部署标记）。"),
    "Markers refused by the caps": (
        "892fdad7", "因新的服务或环境会超出 deploys.max_services / deploys.max_environments 而被拒绝的部署标记"
                    "（流水线收到 422，没有写入任何记录）：可能是流水线把构建号当作服务名发送，也可能需要调高上限。"),
    # exporter
    "Exporter up": ("0c743f9f", "Prometheus 最近一次抓取时能连上所有选中的 exporter 目标。"),
    "Exporter shards": ("dc494075", "被抓取的 exporter 进程数（除非以 run --shard/--total-shards 运行，否则为 1；"
                                    "见 docs/kubernetes.md）。"),
    "Shards missing": (
        "a1c2d1d8", "exporter 声明了（--total-shards）但 Prometheus 没有抓取到的分片：这些分片负责的店铺没有被探测，"
                    "其序列也已消失（告警：MarketplaceExporterShardsMissing）。"),
    "Last config reload": ("065557d5", "FAILING：最近一次重载被拒绝，继续运行上一份有效配置。"),
    "Config loaded": ("53154d57", "距上次成功加载（或重载）配置的时间。"),
    "Broken accounts files": (
        "c6cdc497", "当前无法使用的卖家店铺文件（各自继续使用上一个有效版本）；状态页会列出文件名。新的错误版本计入 "
                    "marketplace_exporter_accounts_file_errors_total。"),
    "Probes > 1 s late": (
        "8db48e74", "所选时段内比计划晚 1 秒以上才开始的探测所占比例（在等单主机并发名额，或事件循环过载）。"),
    "Bridge delivery failures": ("e7fb4d5a", "所选时段内向群机器人投递失败的次数（任何原因）。"),
    "Probe lateness percentiles": ("81ce9c8b", "探测实际开始时间比计划晚多少，来自 lateness 直方图。"),
    "Scrape duration and samples": (
        "637803b7", "Prometheus 抓取 /metrics 的耗时（序列增多时指标暴露也必须保持快速），以及抓到的样本数"
                    "（样本数以百万为单位显示在同一坐标轴上）。"),
    "Build": ("10c90eb6", "每个目标运行的构建：版本、git 提交和分支、Python 版本。"),
    "Bridge build": ("0277cc80", "每个告警桥接服务运行的构建（它有自己的抓取任务：不受上面 job 变量的筛选）。"),
    "Check tags (alert routing)": (
        "4711a45e", "告警规则看到的 checks[].tags：有检查项带 critical 标签的店铺，其店铺级告警为 critical，"
                    "其他店铺为 warning。"),
    "Bridge queue depth": ("45708c9b", "已从 Alertmanager 接收并持久化排队、但尚未投递给群机器人的通知。"),
    "Bridge delivery latency p90": ("94f5a9ce", "从接收 Alertmanager 通知到机器人确认收到的耗时。"),
    "Traffic records": (
        "ddd72841", "卖家系统上报的生产流量记录：accepted、rejected（记录无效）、dropped（客户端队列已满）；"
                    "以及在 /v1/traces 收到的 OTLP span：accepted、ignored（不是对平台的客户端调用）、"
                    "rejected（附原因）。"),
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

_TABLES: dict[str, dict[str, Any]] = {
    "panel title": PANELS, "panel description": DESCRIPTIONS, "table column": COLUMNS,
    "variable label": VARIABLES, "dashboard title": DASHBOARDS, "link or annotation": OTHERS}
#: (table name, English) pairs :func:`translate` looked up, for :func:`unused`
_USED: set[tuple[str, str]] = set()


def chinese(english: str, what: str) -> str:
    """The Chinese for ``english`` from the table for ``what``; stops the generation when there is none."""
    table = _TABLES[what]
    if english not in table:
        raise SystemExit(f"dashboards/zh.py: no Chinese for the {what} {english!r}; add it")
    _USED.add((what, english))
    return str(table[english])


def description(title: str, english: str) -> str:
    """The Chinese description, a blank line, the English; stops when the English changed since."""
    if title not in DESCRIPTIONS:
        raise SystemExit(f"dashboards/zh.py: no Chinese description for the panel {title!r}; add it to "
                         f"DESCRIPTIONS with the fingerprint {fingerprint(english)}")
    expected, text = DESCRIPTIONS[title]
    if fingerprint(english) != expected:
        raise SystemExit(f"dashboards/zh.py: the English description of {title!r} changed (fingerprint "
                         f"{expected} → {fingerprint(english)}): update its Chinese and the fingerprint")
    _USED.add(("panel description", title))
    return f"{text}\n\n{english}"


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def both(english: str, what: str) -> str:
    """``中文 · English``."""
    return f"{chinese(english, what)}{SEPARATOR}{english}"


def translate(data: dict[str, Any]) -> dict[str, Any]:
    """The rendered dashboard with every visible English title made bilingual (in place, returned)."""
    prefix, _, name = data["title"].rpartition(" / ")
    data["title"] = f"{prefix} / {name}{SEPARATOR}{chinese(name, 'dashboard title')}"
    for panel in data["panels"]:
        if panel.get("description"):
            panel["description"] = description(panel["title"], panel["description"])
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
