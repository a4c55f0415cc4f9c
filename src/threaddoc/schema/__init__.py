"""The JSON Schema of the report, shipped with the package (`threaddoc schema`)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def schema_text() -> str:
    return resources.files(__name__).joinpath("report-v1.json").read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_text())
    return loaded
