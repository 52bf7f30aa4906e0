"""Timestamps as the schema publishes them: RFC 3339 date-time text with an offset, nothing else.

pydantic alone also reads numbers (`0.5`, `"1700000000"`) as Unix times and naive text as local time; the
OpenAPI schema says `format: date-time`, so those are refused (a 422 naming the field).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("a timestamp is RFC 3339 date-time text with an offset, e.g. 2026-01-01T00:00:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]
