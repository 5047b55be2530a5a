"""The ingest line that ``make bench`` prints (``python -m bench.ingest``)."""

from __future__ import annotations

import doctest
import re

import bench.ingest
from bench.ingest import summary

LINE = re.compile(
    r"^ingest: tick-to-client p50 [\d.]+ ms p99 [\d.]+ ms at \d+ ticks/s "
    r"\(\d+ clients, \d+ updates; market-ingest \d+ us CPU per tick\)$"
)


def test_the_line_has_the_documented_shape() -> None:
    line = summary([4.0, 6.0, 8.0, 50.0], ticks=1400, seconds=2.0, cpu_s=0.35, clients=10)
    assert LINE.match(line), line
    assert "at 700 ticks/s" in line and "market-ingest 250 us CPU per tick" in line


def test_no_update_says_so() -> None:
    assert summary([], ticks=10, seconds=1.0, cpu_s=0.0, clients=1).startswith(
        "ingest: no price_update reached the clients"
    )


def test_docstring_examples() -> None:
    assert doctest.testmod(bench.ingest).failed == 0
