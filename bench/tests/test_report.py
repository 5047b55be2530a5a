"""The bench's arithmetic: percentiles, per-delivery and per-connection figures, verdicts, lines."""

from __future__ import annotations

import math
import re

import pytest

from bench.report import (
    Row,
    cpu_per_delivery_us,
    kib_per_connection,
    percentile,
    profile_summary,
    ratios,
    summary_line,
    table,
    verdicts,
)

SUMMARY = re.compile(
    r"bench: edge/naive deliveries ratio \S+ at \d+ clients; p99 \S+ ms; "
    r"cpu/delivery \S+ us; \S+ KiB/conn"
)


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 99, 5.0),
        ([1.0, 2.0], 50, 1.0),
        ([1.0, 2.0], 51, 2.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 101)], 100, 100.0),
        ([float(i) for i in range(1, 1001)], 50, 500.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], pct: float, expected: float) -> None:
    assert percentile(values, pct) == expected


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 50))


def test_cpu_per_delivery_is_none_without_deliveries() -> None:
    assert cpu_per_delivery_us(1.0, 0) is None
    assert cpu_per_delivery_us(0.5, 50_000) == pytest.approx(10.0)


def test_kib_per_connection_divides_the_rss_growth() -> None:
    assert kib_per_connection(1000, 1000 + 16 * 5000, 5000) == pytest.approx(16.0)
    assert kib_per_connection(1000, 2000, 0) is None


def _rows() -> list[Row]:
    return [
        Row(scenario="fanout", target="edge", clients=1000, deliveries_per_s=300_000,
            cpu_us_per_delivery=3.0, offered_per_s=400_000),
        Row(scenario="fanout", target="naive", clients=1000, deliveries_per_s=50_000,
            cpu_us_per_delivery=20.0, offered_per_s=400_000),
        Row(scenario="fanout", target="nats-ws", clients=1000, deliveries_per_s=400_000,
            cpu_us_per_delivery=2.0),
        Row(scenario="latency", target="edge", clients=2000, deliveries_per_s=20_000,
            offered_per_s=20_000, p99_ms=12.5),
        Row(scenario="idle", target="edge", clients=5000, connected=5000, setup_s=3.0,
            subscribed_s=3.3, setup_cpu_us=110.0, kib_per_conn=9.5),
        Row(scenario="idle", target="nats-ws", clients=5000, connected=5000, setup_s=2.9,
            subscribed_s=3.0, setup_cpu_us=100.0, kib_per_conn=46.0),
        Row(scenario="capacity", target="edge", clients=10_000, connected=10_000,
            silent_clients=0),
        Row(scenario="restart", target="edge", clients=5000, back=5000, back_s=5.5,
            drain_window_s=5.0, jitter_s=1.0),
    ]  # fmt: skip


def test_summary_line_has_the_issue_format_and_figures() -> None:
    line = summary_line(_rows())
    assert SUMMARY.fullmatch(line), line
    assert "ratio 6.00 at 1000 clients" in line
    assert "p99 12.5 ms" in line
    assert "cpu/delivery 3.00 us" in line
    assert "9.5 KiB/conn" in line


def test_summary_line_says_na_for_what_was_not_measured() -> None:
    line = summary_line([Row(scenario="fanout", target="naive", clients=40)])
    assert SUMMARY.fullmatch(line), line
    assert "ratio n/a" in line and "p99 n/a" in line


def test_every_target_met_when_the_figures_are_inside_them() -> None:
    assert [v.met for v in verdicts(_rows())] == [True] * 7


def test_targets_missed_and_unmeasured_are_told_apart() -> None:
    rows = _rows()
    rows[0] = rows[0].model_copy(update={"deliveries_per_s": 200_000.0})  # 4x
    rows[3] = rows[3].model_copy(update={"p99_ms": 30.0})
    rows[7] = rows[7].model_copy(update={"status": "n/a", "note": "no drain"})
    met = {v.target.split(" ")[0]: v.met for v in verdicts(rows)}
    assert met["deliveries/s"] is False
    assert met["p99"] is False
    assert met["clients"] is None


def test_latency_target_needs_the_offered_rate_delivered() -> None:
    rows = _rows()
    rows[3] = rows[3].model_copy(update={"deliveries_per_s": 15_000.0})
    p99 = next(v for v in verdicts(rows) if v.target.startswith("p99"))
    assert p99.met is False


def test_table_has_a_line_per_row_and_ratios_name_both_references() -> None:
    rows = _rows()
    assert len(table(rows).splitlines()) == 2 + len(rows)
    lines = ratios(rows)
    assert any("edge/naive deliveries ratio 6.00" in line for line in lines)
    assert any("edge/nats-ws deliveries ratio 0.75" in line for line in lines)
    assert any(
        "edge/nats-ws time to all subscribed ratio 1.10, set-up cpu-per-client ratio 1.10" in line
        for line in lines
    )


def test_profile_summary_counts_inclusive_and_self_samples() -> None:
    raw = ["main;loop;fanout 6", "main;loop;accept 3", "main;gc 1", "garbage line"]
    text = profile_summary(raw, top=3)
    assert text.splitlines()[0] == "10 samples"
    assert "  100.0%  main" in text
    assert "   60.0%  fanout" in text
