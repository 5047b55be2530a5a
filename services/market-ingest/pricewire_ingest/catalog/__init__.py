"""The provider catalog: a data file (``providers.json`` beside this module) and its model.

Every provider names its ``upstream`` (the venue or data origin it relays: ``binance``,
``coingecko``, ``alternative.me``, ...; several entries of one upstream are *mirrors*, kept for
failover, and cast one vote in the consensus), its API ``family`` (the adapter that parses it),
its endpoint, its documented
rate limit, its poll interval and how it authenticates (the *name* of the environment variable that
holds a key, never a key). :func:`load_catalog` validates the file; a bad catalog stops start-up.

>>> catalog = load_catalog()
>>> len(catalog.providers) >= 100
True
>>> sorted({p.category for p in catalog.providers})[:3]
['defi', 'exchange', 'market_data']
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Collection, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import CatalogError

__all__ = [
    "Asset",
    "Auth",
    "Catalog",
    "Category",
    "Endpoint",
    "Provider",
    "RateLimit",
    "default_catalog_path",
    "disabled_reason",
    "load_catalog",
    "shard_of",
]

Category = Literal["market_data", "exchange", "news", "sentiment", "onchain", "rpc", "defi"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Auth(_Model):
    """How a provider takes its key. ``env`` names the variable that holds it.

    ``query``/``header``/``apikey_header``: the key goes in the parameter or header ``name``;
    ``bearer``: ``Authorization: Bearer <key>``; ``basic``: HTTP basic with the key as user;
    ``path``: the key replaces ``{key}`` in the base URL.
    """

    type: Literal["none", "query", "header", "apikey_header", "bearer", "basic", "path"] = "none"
    env: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*$")
    name: str | None = None
    required: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Auth:
        if self.type == "none":
            if self.env is not None:
                raise ValueError("auth type none takes no env")
            return self
        if self.env is None:
            raise ValueError(f"auth type {self.type} needs env (the variable holding the key)")
        if self.type in ("query", "header", "apikey_header") and not self.name:
            raise ValueError(f"auth type {self.type} needs name (parameter or header)")
        return self


class Endpoint(_Model):
    """The one request a poll makes. ``{ids}``, ``{symbols}``, ``{pairs}``, ``{pairs_json}`` and
    ``{llama_coins}`` in ``path`` or ``params`` are filled in by the family's adapter."""

    method: Literal["GET", "POST"] = "GET"
    path: str = ""
    params: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None


class RateLimit(_Model):
    requests: int = Field(gt=0)
    per_s: float = Field(gt=0)
    documented: str = Field(min_length=1, description="The provider's published limit, in words")

    @property
    def rate_per_s(self) -> float:
        return self.requests / self.per_s


class Provider(_Model):
    id: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    name: str = Field(min_length=1)
    upstream: str = Field(
        default="",
        pattern=r"^$|^[a-z0-9][a-z0-9._-]{0,63}$",
        description="The venue or data origin this entry relays (binance, coingecko, ...); "
        "entries of one upstream are mirrors: one vote in the consensus. Default: the id",
    )
    category: Category
    family: str = Field(pattern=r"^[a-z0-9_]+$")
    base_url: str = Field(pattern=r"^(https?|wss?)://")
    endpoint: Endpoint = Field(default_factory=Endpoint)
    auth: Auth = Field(default_factory=Auth)
    rate_limit: RateLimit
    rate_group: str | None = Field(
        default=None, description="Providers sharing one limit (default: the base URL's host)"
    )
    poll_interval_s: float = Field(ge=1)
    timeout_s: float = Field(default=10.0, gt=0, le=60)
    docs_url: str | None = None
    notes: str | None = None
    inactive: str | None = Field(default=None, description="Why this entry is not polled")
    feed_format: Literal["rss", "atom"] | None = None
    chain: str | None = None
    options: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_upstream(self) -> Provider:
        if not self.upstream:
            object.__setattr__(self, "upstream", self.id)  # frozen model: set once, here
        return self

    @property
    def group(self) -> str:
        return self.rate_group or (urlsplit(self.base_url).hostname or self.id)


class Asset(_Model):
    symbol: str = Field(pattern=r"^[A-Z0-9]{1,20}$")
    name: str
    name_fa: str
    ids: dict[str, str] = Field(default_factory=dict)

    def id_for(self, key: str) -> str | None:
        return self.ids.get(key)


class Catalog(_Model):
    version: Literal[1]
    about: str = ""
    assets: list[Asset] = Field(min_length=1)
    providers: list[Provider] = Field(min_length=1)

    @model_validator(mode="after")
    def _coherent(self) -> Catalog:
        for what, values in (
            ("provider id", [p.id for p in self.providers]),
            ("asset symbol", [a.symbol for a in self.assets]),
        ):
            seen: set[str] = set()
            dupes = {v for v in values if v in seen or seen.add(v)}  # type: ignore[func-returns-value]
            if dupes:
                raise ValueError(f"duplicate {what}: {sorted(dupes)}")
        # the poll intervals of a rate group must fit inside its documented limit, else the
        # token bucket would be empty all the time and polls would queue behind it
        demand: dict[str, float] = defaultdict(float)
        limit: dict[str, float] = {}
        for p in self.providers:
            if p.inactive:
                continue
            demand[p.group] += 1.0 / p.poll_interval_s
            limit[p.group] = min(limit.get(p.group, float("inf")), p.rate_limit.rate_per_s)
        over = {g: round(demand[g] / limit[g], 2) for g in demand if demand[g] > limit[g] * 1.0001}
        if over:
            raise ValueError(f"poll intervals exceed the rate limit of groups (ratio): {over}")
        return self

    @cached_property
    def mirrors(self) -> frozenset[str]:
        """Ids of the entries that mirror an upstream an earlier entry already relays.

        The first entry of an upstream that is not ``inactive`` (else its first entry) is its
        primary; the others are mirrors.

        >>> c = load_catalog()
        >>> {"binance_vision", "cg_simple_price", "altme_fng"} <= c.mirrors
        True
        >>> {"binance_public", "coingecko", "kraken"} & c.mirrors
        set()
        """
        primary: dict[str, str] = {}
        for p in sorted(self.providers, key=lambda p: p.inactive is not None):  # stable
            primary.setdefault(p.upstream, p.id)
        return frozenset(p.id for p in self.providers if primary[p.upstream] != p.id)

    def upstream_of(self, provider_id: str) -> str:
        """The upstream of ``provider_id``; an id not in the catalog is its own upstream."""
        return self._upstreams.get(provider_id, provider_id)

    @cached_property
    def _upstreams(self) -> dict[str, str]:
        return {p.id: p.upstream for p in self.providers}

    def provider(self, provider_id: str) -> Provider:
        for p in self.providers:
            if p.id == provider_id:
                return p
        raise KeyError(provider_id)

    def shard(self, index: int, count: int) -> list[Provider]:
        """The providers replica ``index`` of ``count`` polls: each exactly once across replicas."""
        if not 0 <= index < count:
            raise ValueError(f"shard index {index} not in [0, {count})")
        return [p for p in self.providers if shard_of(p, count) == index]

    @property
    def symbols(self) -> list[str]:
        return [a.symbol for a in self.assets]


def shard_of(provider: Provider, count: int) -> int:
    """Shard by rate group (a stable hash): providers sharing a limit stay on one replica, so
    one token bucket sees all their requests."""
    return zlib.crc32(provider.group.encode()) % count


def disabled_reason(provider: Provider, keys: Mapping[str, str]) -> str | None:
    """Why ``provider`` is not polled (``None``: it is). ``keys`` maps env var names to keys."""
    if provider.inactive:
        return f"inactive: {provider.inactive}"
    auth = provider.auth
    if auth.type != "none" and auth.required and not keys.get(auth.env or ""):
        return f"needs an API key in {auth.env}"
    return None


def default_catalog_path() -> Path:
    return Path(__file__).with_name("providers.json")


def load_catalog(path: Path | str | None = None, *, families: Collection[str] = ()) -> Catalog:
    """Read and validate a catalog file; ``families``, when given, lists the known adapters."""
    file = Path(path) if path else default_catalog_path()
    try:
        catalog = Catalog.model_validate_json(file.read_bytes())
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {file}: {exc}") from exc
    except ValidationError as exc:
        raise CatalogError(f"invalid catalog {file}: {exc}") from exc
    if families:
        unknown = sorted({p.family for p in catalog.providers} - set(families))
        if unknown:
            raise CatalogError(f"catalog {file} names unknown adapter families: {unknown}")
    return catalog
