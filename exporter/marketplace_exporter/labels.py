"""The one label-value rule: what a name may look like when it becomes a Prometheus label value.

Account aliases, sites, check names, deploy services and environments, traffic services and freeze
windows all end up as label values in dashboards' variable lists and alert texts, so they share one
rule: a letter or digit, then letters, digits, ``_``, ``.``, ``-``; 63 characters at most.

Checked with :func:`re.fullmatch`: a ``$``-anchored ``re.match`` would accept a trailing newline
(``"prod\\n"``), which would forge a line in an audit export and split a label in a text exposition.
No pydantic here: the traffic hook in the seller's process imports this module (see
:data:`marketplace_exporter.config_types.LabelValue` for the pydantic field type).
"""

from __future__ import annotations

import re

#: the rule without anchors (``fullmatch`` anchors it; :data:`LABEL_VALUE_PATTERN` for schemas)
LABEL_VALUE_BODY = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}"
#: for JSON Schema / pydantic (whose regex engine reads ``$`` as the end of the text only)
LABEL_VALUE_PATTERN = rf"^{LABEL_VALUE_BODY}$"
#: what to tell a person whose value was refused
LABEL_VALUE_EXPECTED = "letters, digits, '_', '.', '-' (max 63)"
_LABEL_VALUE = re.compile(LABEL_VALUE_BODY)


def is_label_value(value: object) -> bool:
    """True for a string that satisfies the rule as a whole (no trailing newline)."""
    return isinstance(value, str) and _LABEL_VALUE.fullmatch(value) is not None


def label_value(value: object, what: str) -> str:
    """``value`` if it is a label value, else ``ValueError`` naming ``what`` and the rule."""
    if not is_label_value(value):
        raise ValueError(f"{what}: expected {LABEL_VALUE_EXPECTED}, got {value!r}")
    assert isinstance(value, str)
    return value


__all__ = ["LABEL_VALUE_BODY", "LABEL_VALUE_EXPECTED", "LABEL_VALUE_PATTERN", "is_label_value", "label_value"]
