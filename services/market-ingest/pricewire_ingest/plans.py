"""Provider plans: what the installation's settings change in the catalog before it is polled.

- CryptoPanic: the plan is a path segment (``/api/<plan>/v2/posts/``); the catalog's ``{plan}``
  is filled from ``options.plan``, which ``cryptopanic_plan`` sets.
- CoinGecko: a Demo key (and a keyless call) goes to ``api.coingecko.com`` with ``x-cg-demo-api-key``, a Pro key to
  ``pro-api.coingecko.com`` with ``x-cg-pro-api-key`` (``coingecko_plan``). A keyed install
  spreads the monthly allowance (``coingecko_monthly_calls``) over the CoinGecko entries: each
  polls at most every ``entries * 30 days / allowance`` (with the Demo's 10,000 calls and three
  entries, every 777.6 s), so the allowance lasts the month. Keyless polls keep the catalog's
  public pace.

Pure: a new :class:`~pricewire_ingest.catalog.Catalog` out, the input untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from .catalog import Auth, Catalog, Provider

__all__ = ["COINGECKO_HOSTS", "MONTH_S", "apply_plans", "coingecko_interval_s"]

MONTH_S = 30 * 86400.0

#: plan -> (API root, key header, the environment variable holding the key)
COINGECKO_HOSTS: dict[str, tuple[str, str, str]] = {
    "demo": ("https://api.coingecko.com/api/v3", "x-cg-demo-api-key", "COINGECKO_DEMO_API_KEY"),
    "pro": ("https://pro-api.coingecko.com/api/v3", "x-cg-pro-api-key", "COINGECKO_PRO_API_KEY"),
}


def coingecko_interval_s(entries: int, monthly_calls: int) -> float:
    """The shortest poll interval that keeps ``entries`` polls within the monthly allowance.

    >>> coingecko_interval_s(3, 10_000)
    777.6
    """
    return entries * MONTH_S / monthly_calls


def _is_coingecko(p: Provider) -> bool:
    return p.family.startswith("coingecko_")


def apply_plans(
    catalog: Catalog,
    keys: Mapping[str, str],
    *,
    cryptopanic_plan: str = "developer",
    coingecko_plan: Literal["demo", "pro"] = "demo",
    coingecko_monthly_calls: int = 10_000,
) -> Catalog:
    """The catalog as this installation polls it (``keys``: env var name -> key)."""
    root, header, env = COINGECKO_HOSTS[coingecko_plan]
    coingecko = [p for p in catalog.providers if _is_coingecko(p) and not p.inactive]
    keyed = bool(keys.get(env))
    if not keyed:  # keyless calls go to the public root whatever the plan
        root = COINGECKO_HOSTS["demo"][0]
    floor = coingecko_interval_s(len(coingecko), coingecko_monthly_calls) if coingecko else 0.0
    providers: list[Provider] = []
    for p in catalog.providers:
        update: dict[str, object] = {}
        if p.family == "cryptopanic_posts":
            update["options"] = {**p.options, "plan": cryptopanic_plan}
        elif _is_coingecko(p) and p.auth.type != "none":
            auth = Auth(type=p.auth.type, env=env, name=header, required=p.auth.required)
            update = {"base_url": root, "auth": auth}
            if keyed:
                update["poll_interval_s"] = max(p.poll_interval_s, floor)
        providers.append(p.model_copy(update=update) if update else p)
    return catalog.model_copy(update={"providers": providers})
