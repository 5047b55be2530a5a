"""market-ingest: polls the provider catalog, publishes consensus prices, market, news, alerts
and provider health on NATS.

Layout: :mod:`.catalog` (the providers, as data), :mod:`.adapters` (one parser per API family,
pure), :mod:`.core` (scheduling, rate limits, breakers, consensus, alerts: pure), :mod:`.engine`
(the asyncio loops that tie them together), :mod:`.poller` (httpx), :mod:`.service` (NATS, HTTP
endpoints, process wiring) and :mod:`.simulator` (every provider's shape, served locally).
"""
