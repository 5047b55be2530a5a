from __future__ import annotations

import re
from pathlib import Path

from pricewire_dev.configdoc import render

ROOT = Path(__file__).resolve().parents[3]


def test_the_configuration_page_matches_the_settings_classes() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == render(), "run: uv run python -m pricewire_dev.configdoc"


#: Names in the README that are not settings: JetStream streams, and the test suite's switches.
NOT_SETTINGS = re.compile(
    r"PRICEWIRE_(PRICES|MARKET|NEWS|ALERTS|SESSIONS|CHAIN|TEST_NATS|REQUIRE_BROWSER)$"
)


def test_every_variable_the_readme_names_exists() -> None:
    page = render()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in set(re.findall(r"PRICEWIRE_[A-Z0-9_]+", readme)):
        if name.endswith("__") or NOT_SETTINGS.match(name):
            continue
        assert f"`{name}`" in page or any(f"`{name}{suffix}" in page for suffix in ("", "__")), (
            f"README mentions {name}, which no service reads"
        )
