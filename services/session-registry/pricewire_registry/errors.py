"""session-registry's errors::

RegistryError
 ├── StatsUnavailable   the stats service did not answer (GET /api/sessions/stats: 503)
 ├── StoreConflict      a KV key kept changing under compare-and-set (the event is retried)
 └── CursorError        a ``cursor`` this API did not hand out (400); also a ValueError
"""

from __future__ import annotations

__all__ = ["CursorError", "RegistryError", "StatsUnavailable", "StoreConflict"]


class RegistryError(Exception):
    pass


class StatsUnavailable(RegistryError):
    pass


class StoreConflict(RegistryError):
    pass


class CursorError(RegistryError, ValueError):
    pass
