"""pydantic field types shared by every config model (exporter, deploys, traffic, bridge).

Kept apart from :mod:`marketplace_exporter.durations` so the CLI's client commands can parse a
``--since 7d`` without importing pydantic.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from marketplace_exporter.durations import PATTERN, parse_duration
from marketplace_exporter.labels import LABEL_VALUE_PATTERN

#: "30s", "5m", "1h" or plain seconds, as float seconds; zero and negatives are rejected
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": f"^{PATTERN.pattern}$"}, {"type": "number"}],
                    "description": "duration: 500ms, 30s, 5m, 1h, 1d, or seconds"}),
]

#: a name that becomes a Prometheus label value (account alias, site, check, service, environment,
#: freeze window): the rule in :mod:`marketplace_exporter.labels`, one definition for every model
LabelValue = Annotated[str, Field(pattern=LABEL_VALUE_PATTERN)]

#: who may call a write API (deploy markers, traffic reports, OTLP) without a Bearer token:
#: ``never``; ``loopback`` (127.0.0.1/::1, and only while no token is set); ``always`` (trusted network)
AnonymousWrites = Literal["never", "loopback", "always"]


def _anonymous_from_bool(value: object) -> object:
    """``true``/``false`` (the traffic section's first spelling) mean ``always``/``never``."""
    if isinstance(value, bool):
        return "always" if value else "never"
    return value


#: the config field: one of the three policies; YAML booleans are read as always/never
AnonymousWritesSetting = Annotated[
    AnonymousWrites,
    BeforeValidator(_anonymous_from_bool),
    WithJsonSchema({"enum": ["never", "loopback", "always"],
                    "description": "who may write without a token: never, loopback (127.0.0.1/::1 while no "
                                   "token is set) or always; true/false are read as always/never"}),
]
