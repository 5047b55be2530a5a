"""One connection's authentication state (:class:`AuthSession`): pure, the time is an argument."""

from __future__ import annotations

from dataclasses import dataclass, field

from pricewire_contracts import DATA_GROUPS, CloseCode, Group
from pricewire_contracts.server import ErrorCode

from .errors import SubjectChanged
from .principal import Principal
from .settings import AuthSettings

__all__ = ["AuthSession"]


@dataclass(slots=True)
class AuthSession:
    """One connection's authentication state. Pure: every method takes the time as Unix seconds.

    The edge calls :meth:`check_subscribe` before a ``subscribe`` (or a ``resume``, which
    replays groups), :meth:`authenticate` after a successful ``verify``, and :meth:`due`
    periodically (or at :meth:`deadline`) to learn whether to close the connection and with
    which code.
    """

    settings: AuthSettings
    connected_at: float
    principal: Principal | None = None
    authenticated_at: float | None = field(default=None)

    @property
    def authenticated(self) -> bool:
        return self.principal is not None and not self.principal.anonymous

    @property
    def effective(self) -> Principal | None:
        """Whom the connection acts as now: ``None`` while auth is required and missing."""
        if self.principal is not None:
            return self.principal
        if self.settings.mode == "required":
            return None
        return Principal.anonymous_principal()

    def authenticate(self, principal: Principal, *, now: float) -> frozenset[Group]:
        """Adopt a verified principal; returns the data groups it no longer allows.

        Raises :exc:`SubjectChanged` if the connection already authenticated as someone else.
        """
        previous = self.effective
        if (
            self.authenticated
            and self.principal is not None
            and self.principal.subject != principal.subject
        ):
            raise SubjectChanged()
        self.principal = principal
        self.authenticated_at = now
        if previous is None:
            return frozenset()
        return previous.groups.intersection(DATA_GROUPS) - principal.groups

    def check_subscribe(self, group: Group) -> ErrorCode | None:
        """``None`` if the client may subscribe to ``group``, else the ``error`` reply's code."""
        who = self.effective
        if who is None:
            return "auth_required"
        if not who.grant(group):
            return "forbidden"
        return None

    def grant(self, group: Group) -> frozenset[Group]:
        """The data groups a subscription to ``group`` delivers now (empty: none)."""
        who = self.effective
        return frozenset() if who is None else who.grant(group)

    def deadline(self) -> tuple[float, CloseCode] | None:
        """When the connection must be closed unless the client (re-)authenticates, and how."""
        if self.settings.mode == "off":
            return None
        if self.principal is None or self.principal.anonymous:
            if self.settings.mode == "required":
                return self.connected_at + self.settings.auth_timeout_s, CloseCode.AUTH_TIMEOUT
            return None
        if self.principal.expires_at is None:
            return None
        expiry = self.principal.expires_at.timestamp() + self.settings.expiry_grace_s
        return expiry, CloseCode.TOKEN_EXPIRED

    def due(self, now: float) -> CloseCode | None:
        """The close code if the deadline has passed at ``now``, else ``None``."""
        deadline = self.deadline()
        if deadline is None or now < deadline[0]:
            return None
        return deadline[1]
