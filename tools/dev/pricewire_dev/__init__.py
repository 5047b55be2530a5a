"""Development tools: the launcher behind ``make run``/``make demo`` and the dev gateway.

``python -m pricewire_dev run --providers live|simulated --port 8000`` starts nats-server,
every service that exists and the gateway on one origin; see :mod:`pricewire_dev.launcher`
and :mod:`pricewire_dev.gateway`.
"""
