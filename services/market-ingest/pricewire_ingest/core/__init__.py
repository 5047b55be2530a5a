"""The pure core of market-ingest: every decision, no I/O (no nats, no httpx, no clock reads:
time is always passed in)."""
