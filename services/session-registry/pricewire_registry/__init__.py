"""session-registry: owns the sessions of every ws-edge and serves the REST API.

- :mod:`.table`, :mod:`.liveness`, :mod:`.broadcast`: the pure core (merging session events,
  lost edges, validating a broadcast); no I/O.
- :mod:`.store`: sessions in the JetStream KV bucket, with a watched in-memory mirror.
- :mod:`.service`: the durable consumer of the sessions stream, edge reports, the sweeper.
- :mod:`.api`: FastAPI routes; :mod:`.__main__` wires it all and runs it.
"""
