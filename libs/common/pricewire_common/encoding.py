"""JSON encoding for the wire: orjson everywhere, pydantic models dumped without ``None`` fields."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

__all__ = ["dumps", "loads"]

loads = orjson.loads


def dumps(value: BaseModel | dict[str, Any] | list[Any]) -> bytes:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    return orjson.dumps(value)
