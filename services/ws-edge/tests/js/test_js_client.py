"""Runs the JS client's unit tests (Node's built-in test runner) as part of ``make test``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).parent


def test_js_client_unit_tests_pass_under_node_test_runner() -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed (apt-get install -y nodejs)")
    files = sorted(str(p) for p in JS_TESTS.glob("*.test.js"))
    assert files, "no JS test files found"
    result = subprocess.run(
        [node, "--test", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
