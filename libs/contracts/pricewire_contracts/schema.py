"""JSON Schema export of every contract (``python -m pricewire_contracts.schema DIR``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from . import client, events, server

_MODULES = (client, server, events)


def contract_models() -> dict[str, type[BaseModel]]:
    """Every public pydantic model of the contract modules, by class name."""
    models: dict[str, type[BaseModel]] = {}
    for module in _MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, BaseModel):
                models[name] = obj
    return models


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema() for name, model in sorted(contract_models().items())}


def main(argv: list[str] | None = None) -> None:
    out = Path((argv or sys.argv[1:] or ["docs/schemas"])[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (out / f"{name}.json").write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
