"""Pictures of a job graph: EXPLAIN's compact dataflow section, Graphviz DOT and Mermaid.

All three are drawn from the :class:`~streamsql.physical.graph.JobGraph` the physical
planner built (tasks, their chains and parallelism, edges and their partitioning), so a
picture shows the same tasks and task numbers as EXPLAIN's physical plan. They are plain
text in a fixed order (tasks in topological order, edges by target then input), so that
a changed plan shows as a small diff.

DOT and Mermaid draw one diagram: a script's jobs (its statement set and each SELECT) are
clusters (DOT ``subgraph cluster_N``, Mermaid ``subgraph``) of it when there are several.
Shapes tell sources from sinks: a task that reads tables is an inverted house (DOT) or
inverted trapezoid (Mermaid), one that writes a table or a query's result a house or
trapezoid, one that does both a hexagon, and the others boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamsql.physical.explain import input_side
from streamsql.physical.graph import Edge, JobGraph, Task
from streamsql.plan.nodes import PlanNode, Sink

#: The ``key=[value]`` items of an operator's EXPLAIN line that a picture keeps: those
#: that tell operators of one kind apart (tables, keys, windows), not column lists.
MAIN_DETAILS = (
    "table",
    "joinType",
    "keys",
    "window",
    "groupBy",
    "partitionBy",
    "orderBy",
    "limit",
    "where",
)

#: A condition longer than this is cut: a long WHERE would make a node a wide banner.
MAX_WHERE = 40


# -- what the pictures say ----------------------------------------------------------------


def details(node: PlanNode) -> dict[str, str]:
    """A node's EXPLAIN items as key -> value (``table=[bids]`` -> ``{"table": "bids"}``)."""
    items = (item.partition("=[") for item in node.details())
    return {key: value[:-1] for key, _, value in items}


def short_name(node: PlanNode) -> str:
    """An operator's name, with the table it reads or writes: ``Scan(bids)``, ``Join``."""
    table = details(node).get("table")
    return f"{node.name}({table})" if table is not None else node.name


def operator_label(node: PlanNode) -> str:
    """An operator with its main details: ``WindowAggregate(window=[...], groupBy=[k])``."""
    found = details(node)
    items = [f"{key}=[{_cut(key, found[key])}]" for key in MAIN_DETAILS if key in found]
    return f"{node.name}({', '.join(items)})" if items else node.name


def _cut(key: str, value: str) -> str:
    return value if key != "where" or len(value) <= MAX_WHERE else value[: MAX_WHERE - 3] + "..."


def task_lines(task: Task) -> list[str]:
    """A task's label in a diagram: one line per chained operator, then ``xN``."""
    return [operator_label(n) for n in task.nodes] + [f"x{task.parallelism}"]


def edge_label(graph: JobGraph, edge: Edge) -> str:
    """An edge's partitioning and keys, and the side it feeds: ``hash[k] (left)``."""
    return edge.distribution.describe() + input_side(graph.task(edge.target), edge.input_index)


def role(graph: JobGraph, task: Task) -> str:
    """``source`` (reads a table), ``sink`` (feeds no task), ``both`` or ``operator``."""
    sink = not graph.outputs(task.id)
    if task.is_source:
        return "both" if sink else "source"
    return "sink" if sink else "operator"


def titles(graphs: Sequence[JobGraph]) -> list[str]:
    """A name per job: ``INSERT INTO a, b`` for a statement set, ``query N`` for a SELECT."""
    out, queries = [], 0
    for graph in graphs:
        sinks = [n.table.name for t in graph.tasks for n in t.nodes if isinstance(n, Sink)]
        if sinks:
            out.append("INSERT INTO " + ", ".join(sinks))
        else:
            queries += 1
            out.append(f"query {queries}")
    return out


# -- EXPLAIN's dataflow section ------------------------------------------------------------


def dataflow_text(graph: JobGraph) -> str:
    """One line per task (its operators and parallelism), under it one line per input:
    the task it comes from and how rows are partitioned. A fan-out shows as one task
    named in several tasks' inputs, a fan-in as a task with several inputs.
    """
    lines = []
    for task in graph.tasks:
        chain = " -> ".join(short_name(n) for n in task.nodes)
        lines.append(f"[{task.id}] {chain}  x{task.parallelism}")
        for edge in graph.inputs(task.id):
            lines.append(f"    <- [{edge.source}] {edge_label(graph, edge)}")
    return "\n".join(lines)


# -- Graphviz DOT --------------------------------------------------------------------------

DOT_SHAPES = {"source": "invhouse", "sink": "house", "both": "hexagon", "operator": "box"}


def dot_quote(text: str) -> str:
    """A DOT string: backslashes and double quotes escaped, line breaks as ``\\n``
    (``<``, ``>`` and brackets are plain characters inside quotes).
    """
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def to_dot(graphs: Sequence[JobGraph]) -> str:
    """One ``digraph``; several jobs each in a ``subgraph cluster_N``."""
    lines = ["digraph streamsql {", "  node [shape=box];"]
    if len(graphs) == 1:
        lines += _dot_body(graphs[0], "t", "  ")
    else:
        for n, (graph, title) in enumerate(zip(graphs, titles(graphs), strict=True), 1):
            lines += [f"  subgraph cluster_{n} {{", f"    label={dot_quote(title)};"]
            lines += [*_dot_body(graph, f"j{n}_t", "    "), "  }"]
    return "\n".join([*lines, "}"]) + "\n"


def _dot_body(graph: JobGraph, prefix: str, indent: str) -> list[str]:
    lines = []
    for task in graph.tasks:
        label = dot_quote("\n".join(task_lines(task)))
        shape = DOT_SHAPES[role(graph, task)]
        lines.append(f"{indent}{prefix}{task.id} [shape={shape}, label={label}];")
    for edge in _edges(graph):
        label = dot_quote(edge_label(graph, edge))
        lines.append(f"{indent}{prefix}{edge.source} -> {prefix}{edge.target} [label={label}];")
    return lines


def _edges(graph: JobGraph) -> list[Edge]:
    """Edges in a stable order: by the task they feed, then its input."""
    return sorted(graph.edges, key=lambda e: (e.target, e.input_index, e.source))


# -- Mermaid -------------------------------------------------------------------------------

MERMAID_SHAPES = {
    "source": ('[\\"', '"/]'),
    "sink": ('[/"', '"\\]'),
    "both": ('{{"', '"}}'),
    "operator": ('["', '"]'),
}

#: Characters Mermaid would read as syntax or HTML inside a quoted label, as its entity
#: codes (``#`` first: it starts them).
MERMAID_ENTITIES = (
    ("#", "#35;"),
    ('"', "#quot;"),
    ("&", "#amp;"),
    ("<", "#lt;"),
    (">", "#gt;"),
    ("`", "#96;"),
)


def mermaid_quote(text: str) -> str:
    """Mermaid label text (without its quotes): syntax characters as entity codes, line
    breaks as ``<br>``.
    """
    for char, code in MERMAID_ENTITIES:
        text = text.replace(char, code)
    return text.replace("\n", "<br>")


def to_mermaid(graphs: Sequence[JobGraph]) -> str:
    """One ``flowchart``; several jobs each in a ``subgraph``."""
    lines = ["flowchart TB"]
    if len(graphs) == 1:
        lines += _mermaid_body(graphs[0], "t", "  ")
    else:
        for n, (graph, title) in enumerate(zip(graphs, titles(graphs), strict=True), 1):
            lines.append(f'  subgraph j{n} ["{mermaid_quote(title)}"]')
            lines += [*_mermaid_body(graph, f"j{n}_t", "    "), "  end"]
    return "\n".join(lines) + "\n"


def _mermaid_body(graph: JobGraph, prefix: str, indent: str) -> list[str]:
    lines = []
    for task in graph.tasks:
        start, end = MERMAID_SHAPES[role(graph, task)]
        label = mermaid_quote("\n".join(task_lines(task)))
        lines.append(f"{indent}{prefix}{task.id}{start}{label}{end}")
    for edge in _edges(graph):
        label = mermaid_quote(edge_label(graph, edge))
        lines.append(f'{indent}{prefix}{edge.source} -->|"{label}"| {prefix}{edge.target}')
    return lines


RENDERERS = {"dot": to_dot, "mermaid": to_mermaid}

#: The formats of ``streamsql explain --format`` and ``Session.explain(format=...)``:
#: ``text`` is EXPLAIN's plans, the others the job graph as a diagram.
FORMATS = ("text", *RENDERERS)


def render(graphs: Sequence[JobGraph], fmt: str) -> str:
    """The jobs as one diagram in ``fmt`` (``dot`` or ``mermaid``)."""
    return RENDERERS[fmt](graphs)
