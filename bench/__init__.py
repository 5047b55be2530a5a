"""`make bench`: the fan-out benchmark of ws-edge against two references.

Processes (all on 127.0.0.1):

- the orchestrator (:mod:`bench.run`) starts everything below, keeps time, reads ``/proc``
  and prints the table;
- the system under test, pinned to one core: the edge (``python -m pricewire_edge``), the
  naive FastAPI manager (:mod:`bench.naive`, reference 1) or nats-server's own WebSocket
  listener (reference 2);
- on the other core: the load agent (:mod:`bench.load`: lean clients, :mod:`bench.lean`, for
  the fan-out, latency and set-up figures; picows clients for the rest), the publisher
  agent (:mod:`bench.publisher`, nats-py) and the broker nats-server the edge and the naive
  manager subscribe to.

The orchestrator talks to the two agents in JSON lines over their stdin/stdout; the
messages are the models of :mod:`bench.protocol`. Pure arithmetic (percentiles, ratios,
targets, the table) lives in :mod:`bench.report`.
"""
