"""The one JSON codec of stored columns and payloads: orjson, strict JSON (NaN and infinities become
null, numpy values and tuples are serialized), text in and out."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)
