"""The examples in market-ingest's docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "pricewire_ingest.adapters",
    "pricewire_ingest.adapters.base",
    "pricewire_ingest.catalog",
    "pricewire_ingest.core.alerts",
    "pricewire_ingest.core.breaker",
    "pricewire_ingest.core.consensus",
    "pricewire_ingest.core.gate",
    "pricewire_ingest.core.health",
    "pricewire_ingest.core.news",
    "pricewire_ingest.core.schedule",
    "pricewire_ingest.simulator.faults",
    "pricewire_ingest.streaming.ingest",
    "pricewire_ingest.simulator.world",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
