"""Simulated providers: every catalog endpoint answered locally, in the provider's real shape.

``python -m pricewire_ingest.simulator`` serves them on ``PRICEWIRE_PORT``; point the ingest at it
with ``PRICEWIRE_PROVIDER_BASE_URL_OVERRIDE=http://127.0.0.1:<port>`` (what ``make demo`` does).
"""
