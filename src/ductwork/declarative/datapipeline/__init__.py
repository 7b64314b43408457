"""AWS Data Pipeline definitions, run on Ductwork's engine.

``load_definition(text, source=..., flow_id=...)`` reads and validates a definition and compiles
it into a flow (``compiler``); the other modules are its parts: the object model (``model``),
the object types and their fields (``catalog``), the expression language (``expressions``,
``jodatime``), field evaluation (``scope``) and the operators the flow is made of.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from ductwork.declarative.datapipeline.compiler import Compiled, compile_definition
from ductwork.declarative.datapipeline.model import Definition, parse_definition

__all__ = ["Compiled", "Definition", "flow_id_for", "load_definition", "parse_definition"]


def flow_id_for(path: str | Path) -> str:
    """The flow id of a definition file: its name without the extension, made a valid id."""
    stem = Path(path).name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", stem).lstrip("-") or "pipeline"


def load_definition(
    text: str,
    *,
    source: str,
    flow_id: str,
    activation_time: dt.datetime | None = None,
) -> Compiled:
    """Parse, validate and compile a definition's JSON text; raises ``PipelineDefinitionError``."""
    definition = parse_definition(text, source)
    meta = definition.extra.get("ductwork")
    tags: list[str] = []
    paused = False
    if isinstance(meta, dict):
        # A stored version, as the scheduler writes it (services.pipelines.materialized).
        flow_id = str(meta.get("name") or flow_id)
        first = meta.get("firstActivationTime")
        if activation_time is None and isinstance(first, str):
            activation_time = dt.datetime.fromisoformat(first)
        if meta.get("version") is not None:
            tags.append(f"version:{meta['version']}")
        paused = bool(meta.get("paused", False))
    return compile_definition(definition, flow_id=flow_id, activation_time=activation_time, tags=tags, paused=paused)
