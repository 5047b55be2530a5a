"""Pricewire's message contracts and subject catalog.

One module per family: :mod:`.common` (vocabulary), :mod:`.client` (client to edge),
:mod:`.server` (edge to client, and the data subjects), :mod:`.events` (between services),
:mod:`.subjects` (NATS names). :func:`json_schemas` exports every model as JSON Schema.
"""

from .client import *  # noqa: F403
from .client import __all__ as _client_all
from .close_codes import CloseCode
from .common import *  # noqa: F403
from .common import __all__ as _common_all
from .events import *  # noqa: F403
from .events import __all__ as _events_all
from .schema import json_schemas
from .server import *  # noqa: F403
from .server import __all__ as _server_all
from .subjects import *  # noqa: F403
from .subjects import __all__ as _subjects_all

__all__ = [  # noqa: PLE0604
    *_common_all,
    *_client_all,
    *_server_all,
    *_events_all,
    *_subjects_all,
    "CloseCode",
    "json_schemas",
]
