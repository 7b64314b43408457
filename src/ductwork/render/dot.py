"""Pictures of a graph: Graphviz DOT text (pure), and SVG or PNG through Graphviz's ``dot``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

from ductwork.core.graph import FlowGraph
from ductwork.errors import DuctworkError

STATE_COLOURS: Mapping[str, str] = {
    "success": "#4caf50",
    "failed": "#e53935",
    "upstream_failed": "#ff9800",
    "skipped": "#bdbdbd",
    "running": "#03a9f4",
    "queued": "#9e9e9e",
    "scheduled": "#d1c4e9",
    "up_for_retry": "#fdd835",
    "up_for_reschedule": "#80deea",
    "none": "#ffffff",
}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: FlowGraph, states: Mapping[str, str] | None = None) -> str:
    """DOT source: task groups as clusters, nodes coloured by state when states are given."""
    lines = [
        f"digraph {_quote(graph.flow_id)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, fillcolor="#ffffff"];',
        '  edge [color="#607d8b"];',
    ]
    by_group: dict[str | None, list[str]] = {}
    for node in graph:
        by_group.setdefault(node.group, []).append(node.task_id)

    def node_line(task_id: str, indent: str) -> str:
        node = graph.nodes[task_id]
        label = task_id.rsplit(".", 1)[-1] if node.group else task_id
        attrs = [f"label={_quote(label)}", f"tooltip={_quote(node.operator)}"]
        if states and task_id in states:
            attrs.append(f"fillcolor={_quote(STATE_COLOURS.get(states[task_id], '#ffffff'))}")
        return f"{indent}{_quote(task_id)} [{', '.join(attrs)}];"

    for task_id in by_group.get(None, []):
        lines.append(node_line(task_id, "  "))
    for index, (group, members) in enumerate(sorted((g, m) for g, m in by_group.items() if g is not None)):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f'    label={_quote(group)}; style=dashed; color="#90a4ae";')
        lines.extend(node_line(task_id, "    ") for task_id in members)
        lines.append("  }")
    for node in graph:
        for up in node.upstream:
            lines.append(f"  {_quote(up)} -> {_quote(node.task_id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_source: str, fmt: str) -> bytes:
    """SVG or PNG bytes from DOT source, using the ``dot`` program of Graphviz."""
    if fmt == "dot":
        return dot_source.encode()
    if fmt not in ("svg", "png"):
        raise DuctworkError(f"unknown graph format {fmt!r}: use dot, svg or png")
    exe = shutil.which("dot")
    if exe is None:
        raise DuctworkError(
            "rendering svg or png needs Graphviz's `dot` program, which is not installed "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz). "
            "--format dot works without it."
        )
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot_source.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise DuctworkError(f"graphviz failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout
