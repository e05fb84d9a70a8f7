from streamsql.optimizer.share_sources import share_sources
from streamsql.plan.explain import explain_logical
from streamsql.plan.nodes import Scan, walk


def test_two_inserts_share_one_scan(planner):
    roots = planner.bind(
        "INSERT INTO out SELECT auction, price FROM bids",
        "INSERT INTO out2 SELECT auction, channel FROM bids",
    )
    assert len([n for n in walk(roots) if isinstance(n, Scan)]) == 2
    after = share_sources(roots, planner.ctx())
    scans = [n for n in walk(after) if isinstance(n, Scan)]
    assert len(scans) == 1
    assert "shared by 2 consumers" in explain_logical(after)
    assert [r.schema for r in after] == [r.schema for r in roots]


def test_single_reader_is_left_alone(planner):
    roots = planner.bind("INSERT INTO out SELECT auction, price FROM bids")
    assert share_sources(roots, planner.ctx()) is roots
