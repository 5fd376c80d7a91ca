"""Grafana deploy annotations: ``POST {grafana}/api/annotations`` for every recorded marker, so
every panel shows a vertical line where a deploy happened.

Best effort by design: the push runs in the background after the marker is stored and answered,
retries transient failures (connection errors, timeouts, 429, 5xx) with doubling back-off, and
gives up on a 4xx (a wrong key will not fix itself). Each final outcome is logged and counted in
``marketplace_grafana_annotation_pushes_total{result="ok"|"failed"}``; a mark never fails because
Grafana is down. The API key is sent as a Bearer header and never logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from marketplace_exporter.deploys.config import GrafanaConfig
from marketplace_exporter.deploys.model import DeployRecord
from marketplace_exporter.secrets import SecretUnavailable

log = logging.getLogger(__name__)


def annotation_body(record: DeployRecord, dashboard_uid: str | None) -> dict[str, Any]:
    """The annotation: time in ms, key:value tags dashboards filter on, a one-line text."""
    text = f"Deploy {record.service} {record.version} to {record.environment}: {record.status.value}"
    details = [part for part in (
        f"commit {record.commit[:12]}" if record.commit else "",
        f"by {record.actor}" if record.actor else "",
        f"sites {','.join(record.sites)}" if record.sites else "",
        f"inside freeze {record.freeze} ({record.freeze_policy})" if record.freeze else "",
    ) if part]
    if details:
        text += " (" + "; ".join(details) + ")"
    if record.pipeline_url:
        text += f" pipeline: {record.pipeline_url}"
    body: dict[str, Any] = {
        "time": int(record.deployed_at * 1000),
        "tags": ["deploy", f"service:{record.service}", f"environment:{record.environment}",
                 f"version:{record.version}", f"status:{record.status.value}"],
        "text": text,
    }
    if dashboard_uid:
        body["dashboardUID"] = dashboard_uid
    return body


class _Permanent(Exception):
    """A failure retrying cannot fix (4xx other than 429, no API key)."""


class AnnotationPusher:
    """Owns the background pushes so shutdown can wait for (or cancel) those still in flight."""

    def __init__(self, session: aiohttp.ClientSession, on_result: Callable[[str], None],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._session = session
        self._on_result = on_result
        self._sleep = sleep
        self._tasks: set[asyncio.Task[bool]] = set()

    def push(self, config: GrafanaConfig, record: DeployRecord) -> asyncio.Task[bool]:
        """Start pushing in the background; the task's result says whether it succeeded."""
        task = asyncio.create_task(self.push_now(config, record), name=f"grafana-annotation-{record.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def push_now(self, config: GrafanaConfig, record: DeployRecord) -> bool:
        attempts = config.retries + 1
        last = ""
        for attempt in range(1, attempts + 1):
            try:
                await self._post(config, record)
            except _Permanent as exc:
                last = str(exc)
                break
            except (aiohttp.ClientError, TimeoutError, _Transient) as exc:
                last = str(exc) or type(exc).__name__
                if attempt < attempts:
                    await self._sleep(config.retry_backoff * 2 ** (attempt - 1))
                continue
            self._on_result("ok")
            log.info("grafana annotation for deploy #%d pushed (attempt %d)", record.id, attempt)
            return True
        self._on_result("failed")
        log.warning("grafana annotation for deploy #%d not pushed to %s after %d attempt(s): %s "
                    "(the deploy itself is recorded)", record.id, config.url, attempt, last)
        return False

    async def _post(self, config: GrafanaConfig, record: DeployRecord) -> None:
        headers = {"Content-Type": "application/json"}
        if config.api_key is not None:
            try:
                headers["Authorization"] = f"Bearer {config.api_key.reveal()}"
            except SecretUnavailable as exc:
                raise _Permanent(f"grafana.api_key: {exc}") from None
        url = config.url.rstrip("/") + "/api/annotations"
        timeout = aiohttp.ClientTimeout(total=config.timeout)
        async with self._session.post(url, json=annotation_body(record, config.dashboard_uid),
                                      headers=headers, timeout=timeout) as response:
            if response.status < 300:
                return
            detail = f"HTTP {response.status}"
            if response.status == 429 or response.status >= 500:
                raise _Transient(detail)
            raise _Permanent(f"{detail} (check grafana.url and the API key's permissions)")

    async def close(self, grace: float = 2.0) -> None:
        """Give pushes in flight ``grace`` seconds to finish, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class _Transient(Exception):
    """A failure worth retrying (429, 5xx)."""


__all__ = ["AnnotationPusher", "annotation_body"]
