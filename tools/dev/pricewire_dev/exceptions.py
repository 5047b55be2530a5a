"""Errors of the dev launcher and gateway.

::

    DevError
     ├── LauncherError          the stack cannot start or keep running
     │    ├── PortInUse          a port the user asked for is taken
     │    ├── RunDirBusy         another launcher already uses this run directory
     │    ├── ServiceNotReady    a service did not answer GET /ready 200 in time
     │    └── ServiceDied        a child process exited while the stack was up
     └── ProxyError             the gateway cannot forward a request
          └── BadRequest         the client's request head is not HTTP/1.x we accept
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "DevError",
    "LauncherError",
    "PortInUse",
    "ProxyError",
    "RunDirBusy",
    "ServiceDied",
    "ServiceNotReady",
]


class DevError(Exception):
    """Base of every error raised by pricewire_dev."""


class LauncherError(DevError):
    pass


class PortInUse(LauncherError):
    pass


class RunDirBusy(LauncherError):
    pass


class ServiceNotReady(LauncherError):
    pass


class ServiceDied(LauncherError):
    pass


class ProxyError(DevError):
    pass


class BadRequest(ProxyError):
    """Carries the status the gateway answers with (400, 431, 501...)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
