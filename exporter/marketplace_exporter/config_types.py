"""pydantic field types shared by every config model (exporter, deploys, traffic, bridge).

Kept apart from :mod:`marketplace_exporter.durations` so the CLI's client commands can parse a
``--since 7d`` without importing pydantic.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

from marketplace_exporter.durations import PATTERN, parse_duration

#: "30s", "5m", "1h" or plain seconds, as float seconds; zero and negatives are rejected
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": PATTERN.pattern}, {"type": "number"}],
                    "description": "duration: 500ms, 30s, 5m, 1h, 1d, or seconds"}),
]
