"""``python -m pricewire_ingest.simulator [--faults JSON] [--fault-fraction 0.3] [--seed N]``."""

from __future__ import annotations

import argparse
import logging

from pydantic import TypeAdapter

from pricewire_common.httpserver import HttpServer
from pricewire_common.logs import setup_logging
from pricewire_common.runtime import run, shutdown_event

from ..adapters import ADAPTERS
from ..catalog import load_catalog
from .faults import Fault, assign_faults
from .server import Simulator, create_app
from .settings import SimulatorSettings
from .venues import start_hub, venue_routes

log = logging.getLogger("pricewire.simulator")


async def serve(settings: SimulatorSettings) -> None:
    catalog = load_catalog(settings.catalog_file, families=ADAPTERS)
    sim = Simulator(
        catalog,
        seed=settings.sim_seed,
        volatility_per_s=settings.sim_volatility_per_s,
        jump_interval_s=settings.sim_jump_interval_s,
        jump_pct=settings.sim_jump_pct,
        news_interval_s=settings.sim_news_interval_s,
    )
    if settings.sim_fault_fraction:
        live = [p.id for p in catalog.providers if not p.inactive]
        sim.set_faults(
            dict(
                assign_faults(
                    live, fraction=settings.sim_fault_fraction, seed=settings.sim_fault_seed
                )
            )
        )
    if settings.sim_faults:
        sim.set_faults(TypeAdapter(dict[str, Fault | None]).validate_json(settings.sim_faults))
    stop = shutdown_event()
    app = create_app(sim)
    hub = None
    if settings.sim_venues_port is not None:
        # the exchanges' WebSocket feeds, on the same simulated market as the REST answers
        hub = await start_hub(
            sim.world,
            catalog.assets,
            host=settings.host,
            port=settings.sim_venues_port,
            tick_interval_s=settings.sim_venue_tick_s,
            seed=settings.sim_seed,
        )
        # before the catch-all /<provider>/<path> route
        app.router.routes[0:0] = venue_routes(hub)
    # held requests (timeout faults) must not hold the shutdown
    server = HttpServer(app, host=settings.host, port=settings.port, graceful_s=1)
    await server.start()
    log.info(
        "simulator listening",
        extra={
            "port": server.port,
            "providers": len(catalog.providers),
            "faulted": len(sim.faults),
            "venues": hub.url if hub is not None else None,
        },
    )
    await stop.wait()
    sim.closing.set()
    if hub is not None:
        await hub.stop()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pricewire_ingest.simulator")
    parser.add_argument("--faults", help='JSON {"<provider>": {"mode": "timeout"}}')
    parser.add_argument("--fault-fraction", type=float, help="fault this share of providers")
    parser.add_argument("--fault-seed", type=int)
    parser.add_argument("--seed", type=int, help="fix the random walk and the news")
    args = parser.parse_args(argv)
    overrides = {
        k: v
        for k, v in {
            "sim_faults": args.faults,
            "sim_fault_fraction": args.fault_fraction,
            "sim_fault_seed": args.fault_seed,
            "sim_seed": args.seed,
        }.items()
        if v is not None
    }
    settings = SimulatorSettings(**overrides)
    setup_logging(
        "simulator", level=settings.log_level, fmt=settings.log_format, file=settings.log_file
    )
    run(lambda: serve(settings))


if __name__ == "__main__":
    main()
