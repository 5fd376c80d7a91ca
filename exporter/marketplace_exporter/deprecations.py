"""The API deprecation calendar: dated removals shipped with the product, plus config entries.

Each shipped entry carries its source tag (resolved in docs/marketplaces/sources.md). Removal dates move
(Amazon moved Catalog Items v0 from 2025-03-31 to 2025-04-24 [A22]), so the calendar is data a
user can override: a config entry with the same (marketplace, api) replaces the shipped one.
Past removals stay exported: a dashboard can still show that a removed API is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime


@dataclass(frozen=True)
class Deprecation:
    marketplace: str
    api: str
    removal: date
    source: str

    @property
    def timestamp(self) -> float:
        return datetime(self.removal.year, self.removal.month, self.removal.day, tzinfo=UTC).timestamp()


SHIPPED: tuple[Deprecation, ...] = (
    # SP-API deprecation reminders [A22]
    Deprecation("amazon_sp", "feeds_2020-09-04", date(2024, 6, 27), "A22"),
    Deprecation("amazon_sp", "reports_2020-09-04", date(2024, 6, 27), "A22"),
    Deprecation("amazon_sp", "authorization_v1", date(2024, 3, 27), "A22"),
    Deprecation("amazon_sp", "catalog_items_v0_items", date(2025, 4, 24), "A22"),
)


def calendar(extra: tuple[Deprecation, ...]) -> dict[tuple[str, str], float]:
    """Shipped entries overridden by config entries, as (marketplace, api) → removal time."""
    merged = {(d.marketplace, d.api): d for d in SHIPPED}
    merged.update({(d.marketplace, d.api): d for d in extra})
    return {key: entry.timestamp for key, entry in sorted(merged.items())}
