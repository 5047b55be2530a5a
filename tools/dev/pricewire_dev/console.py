"""The launcher's terminal output: other processes' lines under a coloured name, and the banner.

These lines are written to stdout directly, not through ``logging``: a child's line is
already a formatted log record of its own (time, level, fields), so passing it through our
formatter would stamp a second time and level on it. The banner is plain for the same reason
a ``docker compose up`` banner is: a human copies URLs out of it. The launcher's own events
still go through ``logging``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

__all__ = ["Console", "use_color"]

_COLORS = {
    "red": 31,
    "green": 32,
    "yellow": 33,
    "blue": 34,
    "magenta": 35,
    "cyan": 36,
    "white": 37,
}


def use_color(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour on a terminal, unless NO_COLOR is set; FORCE_COLOR forces it (https://no-color.org)."""
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return stream.isatty()


class Console:
    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        color: bool | None = None,
        name_width: int = 16,
    ) -> None:
        self.stream = stream or sys.stdout
        self.color = use_color(self.stream, os.environ) if color is None else color
        self.name_width = name_width

    def _paint(self, text: str, color: str, *, bold: bool = False) -> str:
        if not self.color:
            return text
        code = f"{'1;' if bold else ''}{_COLORS.get(color, 37)}"
        return f"\x1b[{code}m{text}\x1b[0m"

    def line(self, name: str, color: str, text: str) -> None:
        prefix = self._paint(f"{name:<{self.name_width}} |", color)
        self.stream.write(f"{prefix} {text}\n")
        self.stream.flush()

    def banner(self, lines: Iterable[str]) -> None:
        rule = "-" * 72
        body = "\n".join(lines)
        self.stream.write(f"\n{self._paint(rule, 'cyan')}\n{body}\n{self._paint(rule, 'cyan')}\n\n")
        self.stream.flush()
