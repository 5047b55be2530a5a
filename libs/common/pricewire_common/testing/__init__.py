"""Test support shared by every service's tests: a real nats-server, free ports."""

from .nats_server import NatsServer, find_nats_server, free_port
from .services import ServiceProcess

__all__ = ["NatsServer", "ServiceProcess", "find_nats_server", "free_port"]
