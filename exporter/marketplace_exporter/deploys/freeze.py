"""Freeze windows: dated periods per environment (11.11, Black Friday, 618...) during which a deploy
is an exception. A marker recorded inside one is kept and flagged; ``policy`` says whether the
``verify`` gate only warns or fails the pipeline.

Windows are stored with tz-aware datetimes (converted from the config's wall-clock times in the
window's own timezone), so "00:00 on 11.11 in Asia/Shanghai" means what the sale team meant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

FreezePolicy = Literal["warn", "block"]


@dataclass(frozen=True)
class FreezeWindow:
    """``start`` inclusive, ``end`` exclusive; both tz-aware."""

    name: str
    environments: tuple[str, ...]
    start: datetime
    end: datetime
    policy: FreezePolicy = "warn"

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"freeze window {self.name!r}: start and end must carry a timezone")
        if self.end <= self.start:
            raise ValueError(f"freeze window {self.name!r}: end must be after start")

    def covers(self, environment: str, when: float) -> bool:
        return (environment in self.environments
                and self.start.timestamp() <= when < self.end.timestamp())


def active_freeze(windows: Iterable[FreezeWindow], environment: str, when: float) -> FreezeWindow | None:
    """The window covering ``environment`` at unix time ``when``; when several overlap, a blocking
    one wins over a warning one (the stricter policy applies), then the one that ends last."""
    covering = [window for window in windows if window.covers(environment, when)]
    if not covering:
        return None
    return max(covering, key=lambda window: (window.policy == "block", window.end))


def frozen_environments(windows: Iterable[FreezeWindow]) -> tuple[str, ...]:
    """Every environment some window names (the ``marketplace_deploy_freeze_active`` series)."""
    return tuple(sorted({env for window in windows for env in window.environments}))


__all__ = ["FreezePolicy", "FreezeWindow", "active_freeze", "frozen_environments"]
