"""stats: sums every edge's report and every provider's health.

- :mod:`.aggregate`, :mod:`.providers`: the pure core (edge restarts, counter resets,
  vanished edges; the provider summary); no I/O.
- :mod:`.service`: NATS in and out, the totals persisted in JetStream KV.
- :mod:`.app`: ``/health``, ``/ready``, ``/metrics``; :mod:`.__main__` runs it all.
"""
