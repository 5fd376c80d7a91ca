"""Accounts files at run time: re-read when they change, without a full reload.

Every ``accounts_files_poll`` seconds a worker thread looks at the files' modification times and
sizes and re-reads only the changed (and the broken) ones, so neither a scan of 50,000 files nor a
large re-read runs on the event loop; probes keep their timing meanwhile. When the accounts
changed, the new checks are applied on the loop (the engine restarts only checks whose text
changed) and the reload hooks run, as after a reload.

A broken file keeps its last good version: it is counted in ``marketplace_exporter_accounts_files
{state="broken"}`` (alert on it), each new bad version in ``..._accounts_file_errors_total``, and
listed with its errors on the status page (:func:`render_broken_files`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from html import escape

from aiohttp import web
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from marketplace_exporter import catalogue as c
from marketplace_exporter.config.accounts_files import AccountsFiles
from marketplace_exporter.core import Core
from marketplace_exporter.metric_families import empty_families, empty_family

log = logging.getLogger(__name__)

#: files listed on the status page at most (the metric has the count; the log every file)
MAX_LISTED = 50


class AccountsFilesCollector(Collector):
    def __init__(self, files: AccountsFiles) -> None:
        self._files = files

    def describe(self) -> Iterable[Metric]:
        return [empty_family(spec) for spec in c.ACCOUNTS_FILES_METRICS]

    def collect(self) -> Iterator[Metric]:
        fams = empty_families(c.ACCOUNTS_FILES_METRICS)
        files = self._files
        fams[c.ACCOUNTS_FILES.name].add_metric(["ok"], files.files_ok)
        fams[c.ACCOUNTS_FILES.name].add_metric(["broken"], len(files.broken()))
        fams[c.ACCOUNTS_FILE_ERRORS.name].add_metric([], files.errors_total)
        yield from fams.values()


async def poll(core: Core) -> None:
    """Scan in a thread every poll interval; apply on the loop when the accounts changed."""
    while True:
        config = core.config
        await asyncio.sleep(config.accounts_files.poll_interval)
        if not config.accounts_files.patterns or config.account_context is None:
            continue
        own = [(check.marketplace, check.account) for check in config.own_checks]
        try:
            changed = await asyncio.to_thread(core.accounts.scan, config.accounts_files,
                                              config.account_context, own)
        except Exception:  # a scan must never end the watcher; the next one tries again
            log.exception("scanning the accounts files failed")
            continue
        if changed and core.config is config:  # a full reload meanwhile has read the files itself
            updated = config.with_file_checks(core.accounts.file_checks)
            core.apply(updated)
            log.info("accounts files changed: %d checks now (%d from accounts files)",
                     len(updated.checks), len(core.accounts.file_checks))


def install(core: Core, app: web.Application) -> None:
    """The collector always (a 0 is an explicit "nothing broken"); the watcher while the app runs."""
    core.registry.register(AccountsFilesCollector(core.accounts))

    async def watcher(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(poll(core), name="accounts-files-watcher")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(watcher)


def render_broken_files(broken: Mapping[str, tuple[str, ...]]) -> str:
    """The status page's section on broken accounts files (empty when none is broken): the file,
    whether its last good version is in use, and the first errors. Errors never quote a secret."""
    if not broken:
        return ""
    items = []
    for path in sorted(broken)[:MAX_LISTED]:
        problems = broken[path]
        shown = "".join(f"<li><code class=\"wrap\">{escape(problem)}</code></li>" for problem in problems[:5])
        more = f"<li class=\"muted\">… {len(problems) - 5} more</li>" if len(problems) > 5 else ""
        items.append(f"<li><code class=\"wrap\">{escape(path)}</code><ul>{shown}{more}</ul></li>")
    rest = len(broken) - MAX_LISTED
    tail = f"<p class=\"muted\">… and {rest} more broken files (see the log)</p>" if rest > 0 else ""
    return (f"\n<section class=\"broken-files\"><h2 class=\"crit\">{len(broken)} broken accounts file(s) "
            f"· 账号文件有误</h2><p class=\"muted\">Each keeps its last good version, if it had one; the other "
            f"files apply. 出错的文件沿用上次有效的版本。</p><ul>{''.join(items)}</ul>{tail}</section>\n")


__all__ = ["AccountsFilesCollector", "install", "poll", "render_broken_files"]
