"""Permission drift: what a credential may call, as the platform lists it, against what the seller's
systems need (Temu's ``apiScopeList``, Ozon's ``roles[].methods``).

A platform that answers "these are the APIs this credential may call" lets a monitor see a seller
re-authorise with fewer permission packages, or an admin narrow a key's roles, *before* the ERP's
first failing order sync. The configured list is what the ERP needs; a missing entry is a
``permission`` failure, and the counts are exported as probe values either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field

from marketplace_exporter.catalogue import Reason
from marketplace_exporter.model import ProbeOutcome

#: one configured API name (a Temu ``type``, an Ozon method path)
GrantName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
_SHOWN = 3


def granted_names(listed: object) -> frozenset[str] | None:
    """The strings of a JSON list (others skipped); None when it is not a list."""
    if not isinstance(listed, list):
        return None
    return frozenset(item for item in listed if isinstance(item, str))


def drift(granted: frozenset[str], required: Sequence[str], *, status: int, what: str, count_name: str,
          missing_name: str, message: str) -> ProbeOutcome:
    """A success exporting ``count_name`` (how many are granted), or a ``permission`` failure naming
    the first few ``required`` entries that are not granted (``missing_name`` counts them)."""
    missing = [name for name in required if name not in granted]
    values: tuple[tuple[str, float], ...] = ((count_name, float(len(granted))),)
    if required:
        values += ((missing_name, float(len(missing))),)
    if missing:
        shown = ", ".join(missing[:_SHOWN]) + (f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else "")
        return ProbeOutcome.failed(Reason.PERMISSION, f"{what} no longer granted: {shown}", http_status=status,
                                   values=values)
    return ProbeOutcome.ok(status, message=message, values=values)
