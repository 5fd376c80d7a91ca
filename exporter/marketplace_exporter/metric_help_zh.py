"""Chinese meanings of the catalogue's metrics, for the metric table of README.zh-CN.md.

Each entry pairs the Chinese text with a fingerprint of the English HELP it translates (the first
8 hex digits of its SHA-256, like a ``fuzzy`` mark in a gettext catalogue): when a HELP text in
``catalogue.py`` changes, or a metric is added, ``python -m marketplace_exporter.docs_gen`` refuses
to write the Chinese table and names the metric, so the two READMEs cannot drift apart silently.
The shared sentence about background probes is appended here, as the catalogue appends it.
Names are not repeated: every key is a catalogue spec's ``name``.
"""

from __future__ import annotations

import hashlib

from marketplace_exporter import catalogue as c

#: the Chinese form of the catalogue's ``_BACKGROUND`` sentence
BACKGROUND_ZH = "由后台探测按各检查项自己的间隔更新，而不是在抓取时探测。"

#: metric name → (fingerprint of the English HELP, Chinese meaning without the background sentence)
HELP_ZH: dict[str, tuple[str, str]] = {
    c.PROBE_SUCCESS.name: ("3a19cb50", "检查项最近一次探测成功为 1，否则为 0。"),
    c.PROBE_DURATION.name: ("784e1eab", "检查项最近一次探测的总耗时，含所有步骤（包括换取令牌）。"),
    c.PROBE_HTTP_STATUS.name: ("7ad1b971", "最近一次探测最终响应的 HTTP 状态码；没有收到响应时为 0。"),
    c.PROBE_LAST_RUN.name: ("de778ee6", "检查项最近一次探测结束的 Unix 时间；比几个间隔更早时应告警。"),
    c.PROBE_LAST_SUCCESS.name: ("186ae53c", "检查项最近一次探测成功的 Unix 时间（首次成功之前不存在）。"),
    c.PROBE_INTERVAL.name: ("49588dd1", "配置的检查项后台探测间隔（供判断结果是否过时的规则使用）。"),
    c.PROBES.name: (
        "d88aa3f8", "检查项按自己的计划运行的探测次数（以及部署门禁触发的探测）；按需的 /probe 结果不计入。"),
    c.PROBE_FAILURES.name: (
        "d5b434ce", "按失败原因统计的失败探测次数（封闭集合）：auth、permission 和 throttled 对每个检查项都以 0 存在，"
                    "其他原因在第一次失败时才出现。"),
    c.PROBE_SKIPPED.name: (
        "9cea6265", "因 exporter 已用完其在公开限流值中的份额而未发出的到期探测"
                    "（操作有公开限流值的检查项从 0 开始）。"),
    c.PROBE_REQUESTS.name: (
        "266106be", "exporter 自己为该检查项发出的 HTTP 请求数，按步骤统计：即监控本身消耗的配额（step=call 对每个"
                    "检查项都从 0 开始，step=token 从第一次换取令牌开始）。"),
    c.API_ERRORS.name: ("8bdeec51", "探测遇到的平台错误码（平台自己的错误码；未知错误码归入 'other'）。"),
    c.REQUEST_DURATION.name: ("665f59ea", "每次探测中调用平台 API 的延迟（不含换取令牌）。"),
    c.RATE_LIMIT_REMAINING.name: (
        "673f2c41", "限流余量 0..1，仅在平台上报（source=observed）或可由公开的速率/突发值及 exporter 自身消耗"
                    "建模（source=modelled）时存在。"),
    c.RATE_LIMIT_REMAINING_COUNT.name: (
        "85570549", "平台上报的当前限流窗口内剩余请求数（eBay Developer Analytics 的 remaining、Walmart 的 "
                    "x-current-token-count）；平台未上报时不存在。"),
    c.RATE_LIMIT_RESET.name: ("6fb045f6", "平台给出的限流窗口重置或下一个令牌到达的 Unix 时间。"),
    c.CREDENTIAL_EXPIRY.name: ("2a976091", "凭证到期的 Unix 时间，来自令牌响应、平台 API 或配置的日期。"),
    c.TLS_CERT_EXPIRY.name: ("45e582ac", "被探测（或额外配置）的主机所出示 TLS 证书的到期 Unix 时间。"),
    c.API_DEPRECATION.name: ("15383b6f", "你所依赖的平台 API 下线的 Unix 时间（内置日历加上配置的条目）。"),
    c.PROBE_VALUE.name: ("1295facb", "通用 HTTP 检查从 JSON 或响应头中提取的数值（例如距上次订单同步的秒数）。"),
    c.BUILD_INFO.name: (
        "25bb01a6", "恒为 1；version、revision（git 提交）、branch 和 pythonversion 说明运行的是哪个构建，"
                    "与 prometheus_build_info 相同。"),
    c.CONFIG_RELOAD_OK.name: ("b218f942", "最近一次配置（重新）加载成功为 1；为 0 时继续运行上一份有效配置。"),
    c.CONFIG_RELOAD_TS.name: ("bd902f67", "最近一次成功加载配置的 Unix 时间。"),
    c.PROBE_LATENESS.name: ("0945bd76", "探测实际开始时间比计划晚了多少（在等待单主机并发名额）。"),
    c.ACCOUNTS_FILES.name: (
        "6a4a7083", "按状态统计的店铺文件数：ok 或 broken（如有上一个有效版本则继续使用；状态页和日志会写明"
                    "文件名和错误）。"),
    c.ACCOUNTS_FILE_ERRORS.name: ("67ea78df", "无法使用的店铺文件新版本数（无法读取、内容无效、密钥不可用）。"),
    c.SHARD_ORDINAL.name: (
        "d5467ebc", "本进程的分片号（未分片时为 0）：它探测键哈希到本分片的店铺；每个检查项的序列只由一个分片导出。"),
    c.TOTAL_SHARDS.name: (
        "6ee984f2", "店铺被分到多少个分片（--total-shards；未分片时为 1）：被抓取的分片少于此数，说明有店铺无人探测。"),
    c.PROBE_TAG_INFO.name: (
        "1b5e2ad1", "恒为 1，已配置检查项的每个标签一条序列（checks[].tags）；告警规则据此关联（例如有检查项带 "
                    "'critical' 标签的店铺，其店铺级告警为 critical）。"),
    c.DEPLOY_INFO.name: ("61f0ba2a", "恒为 1，每个服务和环境的最近一次部署；version 和 commit 说明当前运行的是什么。"),
    c.DEPLOY_TIMESTAMP.name: ("5da2dcf7", "每个服务、环境和状态最近一次部署标记的 Unix 时间（来自审计日志）。"),
    c.DEPLOYS.name: ("c801d9eb", "按服务、环境和状态记录的部署标记数（启动时从审计日志重建）。"),
    c.DEPLOYS_IN_FREEZE.name: ("fc07ba9d", "所属环境处于冻结窗口期间记录的部署标记数（会被标记，但照常保留）。"),
    c.DEPLOY_FREEZE_ACTIVE.name: ("d7d86781", "配置的冻结窗口（双 11、黑五……）覆盖该环境时为 1，否则为 0。"),
    c.DEPLOY_VERIFICATIONS.name: ("51f54720", "按结果（pass、fail、undecided）统计的发布后验证门禁运行次数。"),
    c.ANNOTATION_PUSHES.name: (
        "57ef9b7a", "按结果（ok、重试后仍 failed）统计的推送到 Grafana 的部署注解数；从不阻塞部署标记。"),
    c.DEPLOY_MARKERS_REFUSED.name: (
        "21161ac7", "因新的服务或环境会超出 deploys.max_services 或 deploys.max_environments 而被拒绝的部署标记"
                    "（流水线收到 422；没有写入任何记录）。"),
    c.CLIENT_REQUESTS.name: (
        "e5ae62f0", "卖家系统上报的生产 API 调用数，按状态类别统计（2xx..5xx，未收到响应时为 error）。"),
    c.CLIENT_ERRORS.name: ("b7c24aa1", "上报的失败生产调用数，由与探测相同的适配器代码分类。"),
    c.CLIENT_REQUEST_DURATION.name: ("80cbd2c7", "上报的生产调用的延迟。"),
    c.CLIENT_RATE_LIMIT_REMAINING.name: (
        "f25a0e17", "从生产响应中读取的限流余量 0..1，仅在平台同时上报剩余数和窗口大小时存在（优先于建模值）。"),
    c.CLIENT_RATE_LIMIT_REMAINING_REQUESTS.name: (
        "fb732288", "最近一次生产响应上报的限流窗口内剩余请求数（例如 Walmart 的 x-current-token-count）。"),
    c.TRAFFIC_RECORDS.name: (
        "31e8d664", "按结果统计的流量记录数：accepted、rejected（记录无效）、dropped（客户端队列已满，"
                    "由客户端上报）。"),
    c.TRAFFIC_SERIES_CAPPED.name: ("3737cf03", "因该服务的标签组合数达到上限而归入 'other' 的记录数。"),
    c.OTLP_SPANS.name: (
        "06bc5da2", "在 /v1/traces 收到的 OTLP span，按结果统计：accepted（计为一条流量记录）、ignored（不是发往"
                    "平台主机的 HTTP 客户端 span）、rejected（exporter 无法使用的平台 span），并附原因。"),
    c.BRIDGE_NOTIFICATIONS.name: ("dddab670", "告警桥接服务成功投递给群机器人的消息数（响应体 code 为 0）。"),
    c.BRIDGE_FAILURES.name: (
        "961712f2", "按原因统计的投递失败次数（throttled、security、http、transport、rejected……）。"),
    c.BRIDGE_QUEUE_DEPTH.name: ("fabc3169", "已接收并持久化排队、但尚未投递的通知数。"),
    c.BRIDGE_BUILD_INFO.name: (
        "57318317", "恒为 1；告警桥接服务的 version、revision、branch 和 pythonversion（与 "
                    "marketplace_exporter_build_info 的标签相同，用于桥接服务进程）。"),
    c.BRIDGE_DELIVERY_DURATION.name: ("d644496d", "从接收 Alertmanager 通知到机器人确认收到的耗时。"),
}


def fingerprint(text: str) -> str:
    """The first 8 hex digits of the SHA-256 of ``text``: enough to notice an edited HELP."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


class StaleTranslation(Exception):
    """A metric has no Chinese meaning, or its English HELP changed since it was translated."""


def help_zh(spec: c.MetricSpec) -> str:
    """The Chinese meaning of ``spec``; :class:`StaleTranslation` names what to update."""
    entry = HELP_ZH.get(spec.name)
    if entry is None:
        raise StaleTranslation(f"{spec.name}: no Chinese meaning in metric_help_zh.HELP_ZH; add one "
                               f"(fingerprint {fingerprint(spec.help)})")
    expected, text = entry
    if fingerprint(spec.help) != expected:
        raise StaleTranslation(f"{spec.name}: its English HELP changed since it was translated "
                               f"(fingerprint {expected} → {fingerprint(spec.help)}); update the Chinese "
                               f"text in metric_help_zh.HELP_ZH and the fingerprint")
    return text + (BACKGROUND_ZH if spec.help.endswith(c._BACKGROUND) else "")
