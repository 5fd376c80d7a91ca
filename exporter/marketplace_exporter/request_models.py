"""Request bodies of the write APIs as pydantic models, with errors a pipeline's log can act on.

Every refusal names one field and says what was expected (``version: expected a version such as
v1.4.2 ..., got "v1 beta"``), so a deploy step's output says what to fix. A field's ``description``
is the "expected" text; a validator that needs its own words raises ``ValueError`` with them.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

M = TypeVar("M", bound=BaseModel)


class RequestInvalid(ValueError):
    """One field of a request is wrong; ``field`` names it (``body`` for the document itself)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are refused (a typo is named rather than ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_body(model: type[M], body: object, *, context: dict[str, Any] | None = None) -> M:
    """Validate ``body`` (decoded JSON) as ``model``, or raise :class:`RequestInvalid` for the first
    problem (an unknown field first: it often explains the others)."""
    try:
        return model.model_validate(body, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = next((err for err in errors if err["type"] == "extra_forbidden"), errors[0])
        raise describe(model, first) from None


def required(model: type[BaseModel], field: str) -> ValueError:
    """The error for a required field sent empty or null: the same words as a missing one."""
    info = model.model_fields.get(field)
    return ValueError(f"required: {info.description}" if info is not None and info.description else "required")


def describe(model: type[BaseModel], err: ErrorDetails) -> RequestInvalid:
    """One pydantic error → the field it concerns and a message in our words."""
    loc = err["loc"]
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx", {})
    if not loc:
        return RequestInvalid("body", f"expected a JSON object, got {kind_of(value)}")
    field = str(loc[0])
    info = model.model_fields.get(field)
    wanted = info.description if info is not None and info.description else None
    if kind == "extra_forbidden":
        return RequestInvalid(field, f"unknown field; expected some of {', '.join(sorted(model.model_fields))}")
    if kind == "missing":
        return RequestInvalid(field, f"required: {wanted}" if wanted else "required")
    if kind in ("value_error", "assertion_error"):
        return RequestInvalid(field, str(ctx.get("error", err["msg"])).removeprefix("Value error, "))
    if kind == "string_type":
        return RequestInvalid(field, f"expected a string, got {kind_of(value)}")
    if kind == "string_too_long":
        return RequestInvalid(field, f"at most {ctx.get('max_length')} characters, got {len(value)}")
    if kind == "string_pattern_mismatch" and isinstance(value, str):
        return RequestInvalid(field, f"expected {wanted or 'a string matching ' + str(ctx.get('pattern'))}, "
                                     f"got {json.dumps(value[:80], ensure_ascii=False)}")
    expected = wanted or err["msg"].removeprefix("Input should be ")
    return RequestInvalid(field, f"expected {expected}, got {kind_of(value)}")


def kind_of(value: object) -> str:
    """A short, JSON-flavoured description of a wrong value for an error message."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    try:
        return json.dumps(value, ensure_ascii=False)[:60]
    except (TypeError, ValueError):
        return type(value).__name__


__all__ = ["RequestInvalid", "RequestModel", "describe", "kind_of", "parse_body", "required"]
