"""Any answer, however broken, gives every adapter a valid result or a typed PollFailure.

Two kinds of input per family: arbitrary bytes, and the family's recorded answer with random
leaves replaced by random JSON values (the shape a provider has, with values it should not
send). Whatever comes back, every price is finite and positive.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricewire_ingest.adapters import ADAPTERS
from pricewire_ingest.errors import PollFailure

from .test_adapters import OK_FIXTURE

FAMILIES = sorted(ADAPTERS)
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "NaN", "Infinity", "-1", "0", "1e309", "abc", "43250.5"]),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))] or [path]
    return [path]


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _check(parse: Any, family: str, body: bytes, provider_id: str | None) -> None:
    try:
        data = parse(family, body, provider_id=provider_id)
    except PollFailure:
        return  # a typed failure: the breaker counts it, nothing is published
    for quote in data.quotes:
        assert math.isfinite(quote.price)
        assert quote.price > 0


@pytest.mark.parametrize("family", FAMILIES)
@FUZZ
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_give_a_result_or_a_typed_failure(
    family: str, body: bytes, parse: Any
) -> None:
    _check(parse, family, body, OK_FIXTURE[family][1])


@pytest.mark.parametrize("family", FAMILIES)
@FUZZ
@given(data=st.data())
def test_a_recorded_answer_with_wrong_values_gives_a_result_or_a_typed_failure(
    family: str, data: st.DataObject, parse: Any, recorded: Any
) -> None:
    name, provider_id = OK_FIXTURE[family]
    raw = recorded(name)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:  # a feed or another non-JSON answer: mutate its bytes
        cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
        junk = data.draw(st.binary(max_size=40))
        _check(parse, family, raw[:cut] + junk + raw[cut:], provider_id)
        return
    paths = _leaves(document)
    for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=4)):
        document = _replace(document, path, data.draw(json_values))
    _check(parse, family, json.dumps(document).encode(), provider_id)  # big ints too
