"""Operators, one module each; ``create_operator`` picks the one for a plan node."""

from __future__ import annotations

from streamsql.plan.join_nodes import (
    IntervalJoin,
    Join,
    LookupJoin,
    RegularJoin,
    TemporalJoin,
    Union,
    WindowJoin,
)
from streamsql.plan.limit import Limit
from streamsql.plan.local_window_agg import LocalWindowAggregate
from streamsql.plan.nodes import (
    Aggregate,
    Collect,
    Filter,
    PlanNode,
    Project,
    Scan,
    Sink,
    TopN,
    WindowAggregate,
    WindowTopN,
    WindowTVF,
)
from streamsql.runtime.operators.aggregate import AggregateOperator
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.calc import FilterOperator, ProjectOperator
from streamsql.runtime.operators.chain import Chain
from streamsql.runtime.operators.join_interval import IntervalJoinOperator
from streamsql.runtime.operators.join_lookup import LookupJoinOperator
from streamsql.runtime.operators.join_regular import RegularJoinOperator
from streamsql.runtime.operators.join_temporal import TemporalJoinOperator
from streamsql.runtime.operators.join_window import WindowJoinOperator
from streamsql.runtime.operators.limit import LimitOperator
from streamsql.runtime.operators.scan import ScanOperator
from streamsql.runtime.operators.session_window import SessionWindowOperator
from streamsql.runtime.operators.sink import CollectOperator, ResultBuffer, SinkOperator
from streamsql.runtime.operators.topn import TopNOperator
from streamsql.runtime.operators.union import UnionOperator
from streamsql.runtime.operators.window_agg import WindowAggOperator
from streamsql.runtime.operators.window_assign import WindowAssignOperator
from streamsql.runtime.operators.window_local import LocalWindowAggOperator
from streamsql.runtime.operators.window_topn import WindowTopNOperator


def create_operator(node: PlanNode, results: ResultBuffer | None = None) -> Operator:
    """A fresh operator instance for ``node``."""
    match node:
        case Scan():
            return ScanOperator(node)
        case Filter():
            return FilterOperator(node)
        case Project():
            return ProjectOperator(node)
        case WindowTVF():
            return WindowAssignOperator(node)
        case WindowAggregate() if node.window.is_session:
            return SessionWindowOperator(node)
        case WindowAggregate():
            return WindowAggOperator(node)
        case LocalWindowAggregate():
            return LocalWindowAggOperator(node)
        case Aggregate():
            return AggregateOperator(node)
        case TopN():
            return TopNOperator(node)
        case WindowTopN():
            return WindowTopNOperator(node)
        case Join(strategy=RegularJoin()):
            return RegularJoinOperator(node)
        case Join(strategy=IntervalJoin()):
            return IntervalJoinOperator(node)
        case Join(strategy=WindowJoin()):
            return WindowJoinOperator(node)
        case Join(strategy=TemporalJoin()):
            return TemporalJoinOperator(node)
        case LookupJoin():
            return LookupJoinOperator(node)
        case Union():
            return UnionOperator(node)
        case Limit():
            return LimitOperator(node)
        case Sink():
            return SinkOperator(node)
        case Collect():
            assert results is not None
            return CollectOperator(node, results)
    raise NotImplementedError(f"no operator for {node.name}")


__all__ = ["Chain", "Operator", "OperatorContext", "ResultBuffer", "create_operator"]
