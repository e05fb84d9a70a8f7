"""EXPLAIN as a picture: the dataflow section, and the job graph as Graphviz DOT or Mermaid
(``Session.explain(format=...)``, ``streamsql explain --format``).
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import streamsql
from streamsql.cli import explain as explain_command
from streamsql.cli import main
from streamsql.errors import PlanError
from streamsql.physical.render import FORMATS

DDL = """
CREATE TABLE bids (auction BIGINT, price BIGINT, bid_time TIMESTAMP(3),
    WATERMARK FOR bid_time AS bid_time - INTERVAL '2' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE auctions (id BIGINT, seller STRING) WITH ('connector' = 'datagen');
CREATE TABLE per_minute (ws TIMESTAMP(3), auction BIGINT, n BIGINT)
    WITH ('connector' = 'blackhole');
CREATE TABLE cheap (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE `odd "name" <t>` (`k"ey` BIGINT) WITH ('connector' = 'datagen');
"""
WINDOWED = """INSERT INTO per_minute SELECT window_start, auction, COUNT(*)
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bid_time), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, auction"""
CHEAP = "INSERT INTO cheap SELECT auction, price FROM bids WHERE price < 5"
FAN_OUT = f"EXECUTE STATEMENT SET BEGIN {WINDOWED}; {CHEAP}; END"
JOIN = "SELECT b.auction, a.seller FROM bids b JOIN auctions a ON b.auction = a.id"
ODD = 'SELECT `k"ey`, COUNT(*) AS n FROM `odd "name" <t>` GROUP BY `k"ey`'


@pytest.fixture
def session():
    s = streamsql.connect(settings={"parallelism.default": "2"})
    s.execute(DDL)
    return s


def dataflow(text: str) -> str:
    return text.split("== Dataflow ==\n")[1]


def test_windowed_aggregate_shows_the_hash_edge_and_its_keys(session):
    assert dataflow(session.explain(WINDOWED)) == (
        "[1] Scan(bids) -> LocalWindowAggregate  x1\n"
        "[2] GlobalWindowAggregate -> Project -> Sink(per_minute)  x2\n"
        "    <- [1] hash[auction]"
    )


def test_the_section_comes_after_the_physical_plan(session):
    text = session.explain(WINDOWED, verbose=True)
    sections = re.findall(r"^== (.+) ==$", text, flags=re.M)
    assert sections[:3] == ["Optimized Logical Plan", "Physical Plan", "Dataflow"]
    assert sections[3] == "Bound Plan"


def test_fan_out_names_the_shared_source_in_both_branches(session):
    assert dataflow(session.explain(FAN_OUT)) == (
        "[1] Scan(bids)  x1\n"
        "[2] Project -> LocalWindowAggregate  x2\n"
        "    <- [1] round_robin\n"
        "[3] GlobalWindowAggregate -> Project -> Sink(per_minute)  x2\n"
        "    <- [2] hash[auction]\n"
        "[4] Project -> Filter -> Sink(cheap)  x2\n"
        "    <- [1] round_robin"
    )


def test_a_join_lists_both_inputs_with_their_side(session):
    lines = dataflow(session.explain(JOIN)).splitlines()
    assert lines == [
        "[1] Scan(bids)  x1",
        "[2] Scan(auctions)  x1",
        "[3] Join -> Project -> Collect  x2",
        "    <- [1] hash[auction] (left)",
        "    <- [2] hash[id] (right)",
    ]


# -- DOT -----------------------------------------------------------------------------------

QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def dot_structure(dot: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Check a DOT text's structure by regex: every string closed, braces balanced, every
    edge between declared nodes. Returns node id -> shape and (source, target, label).
    """
    bare = QUOTED.sub("S", dot)
    assert '"' not in bare, "a string is not closed (a quote not escaped)"
    depth = 0
    for char in bare:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0 and bare.startswith("digraph streamsql {")
    nodes = dict(re.findall(r"^\s*(\w+) \[shape=(\w+), label=", dot, flags=re.M))
    edges = re.findall(r'^\s*(\w+) -> (\w+) \[label=("(?:[^"\\]|\\.)*")\];$', dot, flags=re.M)
    assert len(edges) == bare.count("->")
    for source, target, _ in edges:
        assert source in nodes and target in nodes
    return nodes, edges


def test_dot_has_a_node_per_task_and_labelled_edges(session):
    nodes, edges = dot_structure(session.explain(FAN_OUT, format="dot"))
    assert nodes == {"t1": "invhouse", "t2": "box", "t3": "house", "t4": "house"}
    assert edges == [
        ("t1", "t2", '"round_robin"'),
        ("t2", "t3", '"hash[auction]"'),
        ("t1", "t4", '"round_robin"'),
    ]


def test_dot_labels_name_operators_details_and_parallelism(session):
    dot = session.explain(WINDOWED, format="dot")
    label = re.search(r"t2 \[shape=house, label=(\".*\")\];", dot).group(1)
    assert label == (
        '"GlobalWindowAggregate(window=[TUMBLE(time_col=[bid_time], size=[1 min])], '
        'groupBy=[auction])\\nProject\\nSink(table=[per_minute])\\nx2"'
    )


def test_dot_fan_in_edges_say_their_side(session):
    _, edges = dot_structure(session.explain(JOIN, format="dot"))
    assert edges == [("t1", "t3", '"hash[auction] (left)"'), ("t2", "t3", '"hash[id] (right)"')]


def test_dot_escapes_quotes_in_names(session):
    dot = session.explain(ODD, format="dot")
    dot_structure(dot)
    assert 'label="Scan(table=[odd \\"name\\" <t>])\\nx1"' in dot
    assert '[label="hash[k\\"ey]"]' in dot


# -- Mermaid -------------------------------------------------------------------------------

MERMAID_NODE = re.compile(r'^\s*(\w+)(\["|\[\\"|\[/"|\{\{")([^"]*)("\]|"/\]|"\\\]|"\}\})$', re.M)
MERMAID_EDGE = re.compile(r'^\s*(\w+) -->\|"([^"]*)"\| (\w+)$', re.M)


def mermaid_structure(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Every line a node (quoted label, no quote inside), an edge between declared nodes,
    or a subgraph's start or end; returns node id -> label and (source, label, target).
    """
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    nodes = {m[0]: m[2] for m in MERMAID_NODE.findall(text)}
    edges = MERMAID_EDGE.findall(text)
    subgraphs = re.findall(r'^\s*subgraph \w+ \["[^"]*"\]$|^\s*end$', text, flags=re.M)
    assert len(lines) == 1 + len(nodes) + len(edges) + len(subgraphs), text
    for source, _, target in edges:
        assert source in nodes and target in nodes
    return nodes, edges


def test_mermaid_is_a_flowchart_with_the_edges(session):
    text = session.explain(FAN_OUT, format="mermaid")
    assert text.startswith("flowchart")
    nodes, edges = mermaid_structure(text)
    assert edges == [
        ("t1", "round_robin", "t2"),
        ("t2", "hash[auction]", "t3"),
        ("t1", "round_robin", "t4"),
    ]
    assert 't1[\\"Scan(table=[bids])<br>x1"/]' in text  # a source's shape
    assert nodes["t4"] == "Project<br>Filter(where=[price #lt; 5])<br>Sink(table=[cheap])<br>x2"


def test_mermaid_escapes_quotes_and_angle_brackets(session):
    nodes, edges = mermaid_structure(session.explain(ODD, format="mermaid"))
    assert nodes["t1"] == "Scan(table=[odd #quot;name#quot; #lt;t#gt;])<br>x1"
    assert ("t1", "hash[k#quot;ey]", "t2") in edges


# -- the API and the CLI -------------------------------------------------------------------


def test_a_bad_format_or_analyze_as_a_picture_is_refused(session):
    with pytest.raises(ValueError, match="format must be one of text, dot, mermaid"):
        session.explain(WINDOWED, format="png")
    with pytest.raises(PlanError, match="as text only"):
        session.explain("EXPLAIN ANALYZE " + WINDOWED, format="dot")


SCRIPT = DDL + f"{WINDOWED};\n{CHEAP};\n{JOIN};\n{ODD};\n"


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "job.sql"
    path.write_text(SCRIPT)
    return path


def test_cli_dot_draws_each_select_and_the_statement_set_in_one_graph(script):
    result = CliRunner().invoke(main, ["explain", "-p", "2", "--format", "dot", str(script)])
    assert result.exit_code == 0, result.output
    nodes, edges = dot_structure(result.output)
    clusters = re.findall(r"subgraph (cluster_\d+) \{\n\s*label=(.*);", result.output)
    assert clusters == [
        ("cluster_1", '"query 1"'),
        ("cluster_2", '"query 2"'),
        ("cluster_3", '"INSERT INTO per_minute, cheap"'),
    ]
    assert len([n for n in nodes if n.startswith("j3_")]) == 4  # the INSERTs share one scan
    assert ("j1_t1", "j1_t3", '"hash[auction] (left)"') in edges


def test_cli_writes_mermaid_to_a_file(script, tmp_path):
    out = tmp_path / "graph.mmd"
    args = ["explain", "--format", "mermaid", "-o", str(out), str(script)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and result.output == ""
    nodes, edges = mermaid_structure(out.read_text())
    assert len(re.findall(r"^  subgraph ", out.read_text(), flags=re.M)) == 3
    assert "j3_t1" in nodes and ("j3_t1", "forward", "j3_t2") in edges  # at parallelism 1


def test_cli_text_is_the_explain_output(script):
    result = CliRunner().invoke(main, ["explain", "-p", "2", str(script)])
    assert result.exit_code == 0
    assert result.output.count("== Physical Plan ==") == result.output.count("== Dataflow ==") == 3


def test_cli_bad_format_is_clicks_clear_error(script):
    result = CliRunner().invoke(main, ["explain", "--format", "svg", str(script)])
    assert result.exit_code == 2
    assert "Invalid value for '--format'" in result.output
    assert "'svg' is not one of 'text', 'dot', 'mermaid'" in result.output


def test_cli_offers_the_renderers_formats():
    option = next(p for p in explain_command.params if p.name == "fmt")
    assert isinstance(option.type, click.Choice) and tuple(option.type.choices) == FORMATS
