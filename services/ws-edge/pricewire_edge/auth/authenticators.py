"""The async face the edge calls: an :class:`Authenticator` per process, picked by
:func:`create_authenticator` for the configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .errors import AuthNotConfigured
from .jwks import JwksAuthenticator
from .principal import Principal
from .settings import AuthSettings
from .verifier import TokenVerifier

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Authenticator",
    "DisabledAuthenticator",
    "StaticKeyAuthenticator",
    "create_authenticator",
]


class Authenticator(Protocol):
    """What the edge calls: ``await verify(token)``; one per process."""

    settings: AuthSettings

    async def start(self) -> None: ...

    async def verify(self, token: str) -> Principal: ...

    async def aclose(self) -> None: ...


class DisabledAuthenticator:
    """Mode ``off``: every token is answered with :exc:`AuthNotConfigured`."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings

    async def start(self) -> None:
        return None

    async def verify(self, token: str) -> Principal:
        raise AuthNotConfigured()

    async def aclose(self) -> None:
        return None


class StaticKeyAuthenticator:
    """A secret or a PEM public key: verification never waits."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.verifier = TokenVerifier(settings)

    async def start(self) -> None:
        return None

    async def verify(self, token: str) -> Principal:
        return self.verifier.verify(token)

    async def aclose(self) -> None:
        return None


def create_authenticator(
    settings: AuthSettings, *, client: httpx.AsyncClient | None = None
) -> Authenticator:
    """The authenticator for a configuration; raises :exc:`AuthConfigError` if it cannot work."""
    if settings.mode == "off":
        return DisabledAuthenticator(settings)
    if settings.jwks_url is not None:
        return JwksAuthenticator(settings, client=client)
    return StaticKeyAuthenticator(settings)
