"""Deploy alerts: a failed deploy, a deploy during a freeze window, errors that rose after a deploy.

They read the deploy markers the pipeline sends to the exporter (``marketplace_deploy_*``) and,
for "errors rose", the seller's own production traffic (``marketplace_client_*``), falling back to
the probes for services that report no traffic.

The verification rule counts the gate's ``fail`` answers; the gate pre-creates the other results
of a target at 0, and a ``fail`` series that is itself new is caught by ``unless ... offset``.

Why timestamps rather than ``increase()`` of the deploy counters: a counter series that appears for
the first time with value 1 (the first failed deploy of a new service) shows no increase in
Prometheus, so the alert would miss exactly the first failure. ``time() - timestamp < window``
cannot miss it. The freeze rule uses both: the exporter's freeze counter (authoritative, but blind
to a new series) or a deploy marker within the window while the freeze gauge is still 1.

Several replicas sharing a PostgreSQL audit log each export the whole log's markers (the same
``marketplace_deploy*`` series from every replica): those are read with ``max by`` (one marker is
one, however many replicas show it). The gate's ``marketplace_deploy_verifications_total`` counts on
the replica that ran it, so it is summed (docs/metrics.md, "One answer from several processes").
"""

from __future__ import annotations

from marketplace_exporter import catalogue as c
from marketplace_exporter.mixin.config import AlertConfig
from marketplace_exporter.mixin.promql import Rule, alert, by, matches, num, on, seconds, sel

_FAILED = (c.DeployStatus.FAILED, c.DeployStatus.ROLLED_BACK)
_DEPLOYED = (c.DeployStatus.STARTED, c.DeployStatus.SUCCEEDED)


def _deploy_ts(cfg: AlertConfig, statuses: tuple[str, ...], environments: tuple[str, ...] = ()) -> str:
    """Latest deploy marker time per (service, environment) among ``statuses`` (and environments)."""
    matchers = [matches(c.STATUS, *statuses)]
    if environments:
        matchers.append(matches(c.ENVIRONMENT, *environments))
    return f"max {by(c.SERVICE, c.ENVIRONMENT)} ({sel(cfg.selector, c.DEPLOY_TIMESTAMP, *matchers)})"


def _ratio(cfg: AlertConfig, errors: c.MetricSpec, total: c.MetricSpec, group: str, window: str,
           offset: str = "") -> str:
    off = f" offset {offset}" if offset else ""
    return (f"sum{group} (rate({sel(cfg.selector, errors)}[{window}]{off}))"
            f" / sum{group} (rate({sel(cfg.selector, total)}[{window}]{off}))")


def _rose(cfg: AlertConfig, errors: c.MetricSpec, total: c.MetricSpec, group: str) -> str:
    """Error ratio over the post-deploy window > max(factor × the baseline before it, floor)."""
    now = _ratio(cfg, errors, total, group, cfg.post_deploy_window)
    before = _ratio(cfg, errors, total, group, cfg.post_deploy_baseline, cfg.post_deploy_window)
    return (f"({now})\n"
            f"    > clamp_min({num(cfg.post_deploy_factor)} * ({before}), {num(cfg.post_deploy_min_ratio)})")


def errors_rose_expr(cfg: AlertConfig) -> str:
    """Traffic of the deployed service when it reports any; otherwise all probes (see runbook)."""
    svc = f" {by(c.SERVICE)}"
    deployed = _deploy_ts(cfg, _DEPLOYED, cfg.post_deploy_environments)
    recent = f"(time() - {deployed} < {num(seconds(cfg.post_deploy_window))}) * 0 + 1"
    traffic = (f"label_replace(\n"
               f"  (\n    {_rose(cfg, c.CLIENT_ERRORS, c.CLIENT_REQUESTS, svc)}\n  )\n"
               f"  * {on(c.SERVICE)} group_right ()\n  ({recent}),\n"
               f'  "signal", "traffic", "", ""\n)')
    has_traffic = f"sum{svc} (rate({sel(cfg.selector, c.CLIENT_REQUESTS)}[{cfg.post_deploy_baseline}]))"
    probes = (f"label_replace(\n"
              f"  (\n    {_rose(cfg, c.PROBE_FAILURES, c.PROBES, '')}\n  )\n"
              f"  * on () group_right ()\n  (({recent}) unless {on(c.SERVICE)} {has_traffic}),\n"
              f'  "signal", "probes", "", ""\n)')
    return f"{traffic}\nor\n{probes}\n"


def deploy_rules(cfg: AlertConfig) -> list[Rule]:
    failed_window_s = num(seconds(cfg.deploy_failed_window))
    failed = f"""
time() - {_deploy_ts(cfg, _FAILED)} < {failed_window_s}
unless {on(c.SERVICE, c.ENVIRONMENT)}
  (
    {_deploy_ts(cfg, _DEPLOYED)}
      > {on(c.SERVICE, c.ENVIRONMENT)} {_deploy_ts(cfg, _FAILED)}
  )
"""
    svc_env_by = by(c.SERVICE, c.ENVIRONMENT)
    # replicas sharing the audit log export the same counters: max, not sum (one marker is one)
    freeze = f"""
max {svc_env_by} (increase({sel(cfg.selector, c.DEPLOYS_IN_FREEZE)}[{cfg.deploy_freeze_window}])) > 0
or
(
  time() - {_deploy_ts(cfg, _DEPLOYED)} < {num(seconds(cfg.deploy_freeze_window))}
  and {on(c.ENVIRONMENT)} max {by(c.ENVIRONMENT)} ({sel(cfg.selector, c.DEPLOY_FREEZE_ACTIVE)}) == 1
)
"""
    # a gate run counts on the one process that served it: sum over processes
    verify_fail = sel(cfg.selector, c.DEPLOY_VERIFICATIONS, matches(c.RESULT, c.VerifyResult.FAIL))
    verify_window = cfg.deploy_verify_window
    verify = f"""
sum {svc_env_by} (increase({verify_fail}[{verify_window}])) > 0
or
sum {svc_env_by} ({verify_fail} > 0 unless {verify_fail} offset {verify_window})
"""
    svc_env = "{{ $labels.service }} in {{ $labels.environment }}"
    svc_env_zh = "{{ $labels.service }}（{{ $labels.environment }} 环境）"
    window = cfg.post_deploy_window
    factor = num(cfg.post_deploy_factor)
    floor = num(cfg.post_deploy_min_ratio * 100)
    return [
        alert(
            "MarketplaceDeployFailed", failed, cfg.deploy_failed_for, "warning", "deploy",
            "A deploy failed or was rolled back.",
            f"The latest deploy of {svc_env} failed or was rolled back {{{{ $value | humanizeDuration }}}} "
            "ago, and no later deploy has started or succeeded.",
            "发布失败或已回滚。",
            f"{svc_env_zh}最近一次发布在 {{{{ $value | humanizeDuration }}}} 前失败或已回滚，"
            "之后没有新的发布开始或成功。",
        ),
        alert(
            "MarketplaceDeployVerificationFailed", verify, cfg.deploy_verify_for, "warning", "deploy",
            "A post-deploy verification failed.",
            f"The post-deploy verification gate answered \"fail\" for {svc_env} within the last "
            f"{verify_window}: the marketplace checks got worse after the deploy.",
            "发布后验证未通过。",
            f"{svc_env_zh}最近 {verify_window} 内的发布后验证结果为 fail：发布后市场检查变差。",
        ),
        alert(
            "MarketplaceDeployDuringFreeze", freeze, cfg.deploy_freeze_for, "critical", "deploy",
            "A deploy was made during a freeze window.",
            f"{svc_env} was deployed while a freeze window covered the environment (within the "
            f"last {cfg.deploy_freeze_window}); decide now whether to roll back.",
            "封网期间有发布。",
            f"{svc_env_zh}在封网窗口内进行了发布（最近 {cfg.deploy_freeze_window} 内），"
            "请立即确认是否需要回滚。",
        ),
        alert(
            "MarketplaceErrorsRoseAfterDeploy", errors_rose_expr(cfg), cfg.post_deploy_for, "critical",
            "deploy",
            "Marketplace API errors rose after a deploy.",
            f"Since {svc_env} was deployed, the marketplace error ratio ({{{{ $labels.signal }}}}) "
            f"is {{{{ $value | humanizePercentage }}}} over the last {window}: more than {factor}x "
            f"the {cfg.post_deploy_baseline} before and above {floor}%. Consider rolling back.",
            "发布后市场接口错误率上升。",
            f"{svc_env_zh}发布后，最近 {window} 的市场接口错误率（{{{{ $labels.signal }}}}）为 "
            f"{{{{ $value | humanizePercentage }}}}，超过发布前 {cfg.post_deploy_baseline} 的 {factor} 倍"
            f"且高于 {floor}%，请考虑回滚。",
        ),
    ]
