"""The binder: statements and sqlglot query trees become logical plans over the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from streamsql.catalog import Catalog, CatalogTable, CatalogView
from streamsql.errors import BindError, PlanError, StreamSQLError
from streamsql.parser import ast
from streamsql.parser.spans import span_of
from streamsql.plan.aggregate import (
    SESSION_HINT,
    SESSION_ONLY_AGGREGATED,
    AggregateBinder,
    contains_aggregate,
    is_aggregate,
    unaggregated_session,
)
from streamsql.plan.emit import UPDATING_SINKS
from streamsql.plan.group_windows import rewrite_group_window
from streamsql.plan.joins import bind_join
from streamsql.plan.limit import TOP_N_HINT, bind_limit
from streamsql.plan.nodes import (
    Collect,
    Filter,
    PlanNode,
    Project,
    Scan,
    Sink,
    WindowAggregate,
    WindowTopN,
    updates_origin,
    walk,
)
from streamsql.plan.ranking import bind_rank, bounded, check_bounded, has_ranking, replace_ranking
from streamsql.plan.scope import Scope, ScopeColumn
from streamsql.plan.union import bind_union
from streamsql.plan.windows import bind_window_tvf, is_window_call
from streamsql.types import sql_type_name

if TYPE_CHECKING:
    from streamsql.config import Settings


class Binder:
    """Binds queries against a catalog. One instance per statement. ``settings`` (the
    session's) decide how window aggregates emit; without them they emit at window close.
    """

    def __init__(self, catalog: Catalog, settings: Settings | None = None) -> None:
        self.catalog = catalog
        self.settings = settings
        self._expanding: list[str] = []  # views being expanded, to catch cycles

    # -- statements ------------------------------------------------------------------------

    def query(self, query: ast.Query) -> Collect:
        """A SELECT statement: its rows go back to the caller."""
        root = Collect(self.bind_query(query.tree).node)
        check_bounded(root)
        _check_emit_on_close(query, root)
        return root

    def insert(self, stmt: ast.Insert) -> Sink:
        """``INSERT INTO t SELECT …``: columns matched by position, types cast to t's."""
        table = self.catalog.table(stmt.table, stmt.span)
        table.validate_for("sink")
        scope = self.bind_query(stmt.query.tree)
        target = table.physical_schema
        names = list(stmt.columns) or target.names
        unknown = [n for n in names if n not in target.names]
        if unknown:
            raise BindError(
                f"table '{table.name}' has no column '{unknown[0]}'",
                span=stmt.span,
                hint=f"its columns are {', '.join(target.names)}",
            )
        source = scope.node.schema
        if len(source) != len(names):
            raise BindError(
                f"INSERT INTO {table.name} needs {len(names)} columns "
                f"({', '.join(names)}) but the query produces {len(source)} "
                f"({', '.join(source.names)})",
                span=stmt.query.span or stmt.span,
            )
        by_target = dict(zip(names, source.names, strict=True))
        exprs = []
        for f in target:
            if f.name in by_target:
                src = by_target[f.name]
                _check_castable(source.field(src).type, f.type, src, f.name, table.name, stmt)
                exprs.append((f.name, exp.column(src, quoted=True)))
            else:
                exprs.append((f.name, exp.Null()))
        node = Project(scope.node, tuple(exprs))
        check_bounded(node)
        _check_emit_on_close(stmt.query, node)
        if node.mode.updating and not table.connector.accepts_updates(table.context):
            _refuse_updating_windows(node, table, stmt)
            raise PlanError(
                f"INSERT INTO {table.name}: the query produces updates, from "
                f"{updates_origin(node)}, but connector "
                f"'{table.connector.name}' can only append rows",
                span=stmt.query.span or stmt.span,
                hint="write to a table that accepts updates (a 'duckdb' table with a PRIMARY "
                "KEY, or 'print'), aggregate per window (TUMBLE, HOP, CUMULATE) so that "
                "each result is final, or keep the result in a CREATE MATERIALIZED VIEW",
            )
        return Sink(node, table)

    # -- queries ---------------------------------------------------------------------------

    def bind_query(self, tree: exp.Expression, ctes: dict[str, Scope] | None = None) -> Scope:
        ctes = dict(ctes or {})
        with_ = tree.args.get("with_") or tree.args.get("with")
        if with_ is not None:
            for cte in with_.expressions:
                ctes[cte.alias] = self.bind_query(cte.this, ctes).requalified(cte.alias)
        match tree:
            case exp.Select():
                return self._select(tree, ctes)
            case exp.Subquery():
                return self.bind_query(tree.this, ctes)
            case exp.Union():
                _refuse_order(tree)
                return bind_limit(tree, bind_union(self, tree, ctes))
            case _:
                raise PlanError(f"{tree.key.upper()} queries are not supported", span=span_of(tree))

    def _select(self, sel: exp.Select, ctes: dict[str, Scope]) -> Scope:
        if (tvf_form := rewrite_group_window(sel)) is not sel:  # GROUP BY TUMBLE(ts, ...)
            return self.bind_query(tvf_form, ctes)
        return bind_limit(sel, self._select_rows(sel, ctes))

    def _select_rows(self, sel: exp.Select, ctes: dict[str, Scope]) -> Scope:
        """A SELECT without its LIMIT."""
        from_ = sel.args.get("from_") or sel.args.get("from")
        if from_ is None:
            raise PlanError(
                "a streaming query needs a FROM clause",
                span=span_of(sel),
                hint="read from a table, e.g. SELECT ... FROM my_table",
            )
        scope = self._from_item(from_.this, ctes)
        for join in sel.args.get("joins") or ():
            scope = bind_join(self, scope, join, ctes)
        where = sel.args.get("where")
        if where is not None:
            node, cond = bounded(scope.node, self.expr(where.this, scope))
            if cond is not None:
                node = Filter(node, cond)
            scope = Scope(node, scope.columns, scope.window, scope.window_columns)
        self._unsupported_clauses(sel)
        aggregated = sel.args.get("group") is not None or any(
            contains_aggregate(e) for e in sel.expressions
        )
        if aggregated:
            return AggregateBinder(self, sel, scope).bind()
        if unaggregated_session(scope):
            raise BindError(SESSION_ONLY_AGGREGATED, span=span_of(from_.this), hint=SESSION_HINT)
        if sel.args.get("having") is not None:
            raise BindError("HAVING needs GROUP BY", span=span_of(sel.args["having"]))
        if has_ranking(sel):
            scope = bind_rank(self, sel, scope)
            sel = sel.copy()
            sel.set("expressions", [replace_ranking(e) for e in sel.expressions])
        return self._project(sel, scope)

    def _unsupported_clauses(self, sel: exp.Select) -> None:
        _refuse_order(sel)
        for key, what, hint in (
            ("distinct", "SELECT DISTINCT", "GROUP BY the window and the columns instead"),
            ("qualify", "QUALIFY", None),
        ):
            node = sel.args.get(key)
            if node is not None:
                raise PlanError(
                    f"{what} is not supported on streams yet", span=span_of(node), hint=hint
                )

    def _project(self, sel: exp.Select, scope: Scope) -> Scope:
        outputs: list[tuple[str, exp.Expression]] = []
        cols: list[ScopeColumn] = []
        roles: dict[str, str] = {}
        for item in sel.expressions:
            if _is_star(item):
                qualifier = item.table if isinstance(item, exp.Column) else None
                for c in scope.star(qualifier or None, item):
                    if c.name.startswith("$"):  # internal columns (a rank) are not in *
                        continue
                    name = _unique(c.name, [n for n, _ in outputs])
                    outputs.append((name, exp.column(c.internal, quoted=True)))
                    cols.append(ScopeColumn(name, name))
                    _track_window(scope, c.internal, name, roles)
                continue
            bound = self.expr(item, scope)
            bound = bound.this if isinstance(bound, exp.Alias) else bound
            name = self.output_name(item, len(outputs), [n for n, _ in outputs])
            outputs.append((name, bound))
            cols.append(ScopeColumn(name, name))
            if isinstance(bound, exp.Column):
                _track_window(scope, bound.name, name, roles)
        node = Project(scope.node, tuple(outputs))
        window = scope.window if {"start", "end"} <= set(roles) else None
        return Scope(node, tuple(cols), window, roles if window else {})

    def _from_item(self, item: exp.Expression, ctes: dict[str, Scope]) -> Scope:
        alias = item.alias or None
        match item:
            case exp.Table() if isinstance(item.this, exp.Anonymous):
                call = item.this
                if str(call.this).upper() == "TABLE" and call.expressions:
                    inner = call.expressions[0]
                    if is_window_call(inner):
                        return bind_window_tvf(self, inner, alias, ctes)
                raise PlanError(
                    f"table function {call.sql()} is not supported",
                    span=span_of(call),
                    hint="window table functions are TUMBLE, HOP and CUMULATE",
                )
            case exp.Table() if item.args.get("version") is not None:
                raise PlanError(
                    "FOR SYSTEM_TIME AS OF belongs on the right side of a JOIN",
                    span=span_of(item),
                    hint="e.g. FROM orders o JOIN rates FOR SYSTEM_TIME AS OF o.ts r ON …",
                )
            case exp.Table():
                return self.relation(item.name, item, ctes, alias)
            case exp.Subquery():
                return self.bind_query(item.this, ctes).requalified(alias)
            case _:
                raise PlanError(f"unsupported FROM item {item.sql()}", span=span_of(item))

    def relation(
        self,
        name: str,
        at: exp.Expression,
        ctes: dict[str, Scope],
        alias: str | None = None,
    ) -> Scope:
        """The scope of a table, view or CTE named in FROM (or as a TVF's TABLE argument)."""
        if name in ctes:
            return ctes[name].requalified(alias or name)
        try:
            found = self.catalog.lookup(name, span_of(at))
        except StreamSQLError:
            if ctes:
                raise BindError(f"unknown table, view or CTE '{name}'", span=span_of(at)) from None
            raise
        if isinstance(found, CatalogTable):
            found.validate_for("source")
            return Scope.of(Scan(found, tuple(found.schema.names)), alias or found.name)
        return self._view(found, at).requalified(alias or found.name)

    def _view(self, view: CatalogView, at: exp.Expression) -> Scope:
        if view.name in self._expanding:
            raise BindError(f"view '{view.name}' refers to itself", span=span_of(at))
        self._expanding.append(view.name)
        try:
            scope = self.bind_query(view.query.tree)
        except StreamSQLError as e:
            raise e.with_source(view.script) from None
        finally:
            self._expanding.pop()
        if view.columns:
            if len(view.columns) != len(scope.columns):
                raise BindError(
                    f"view '{view.name}' names {len(view.columns)} columns but its query "
                    f"produces {len(scope.columns)}",
                    span=span_of(at),
                )
            renamed = tuple(
                ScopeColumn(n, c.internal, c.qualifiers)
                for n, c in zip(view.columns, scope.columns, strict=True)
            )
            scope = Scope(scope.node, renamed, scope.window, scope.window_columns)
        return scope

    # -- expressions -----------------------------------------------------------------------

    def expr(
        self, e: exp.Expression, scope: Scope, *, allow_aggregates: bool = False
    ) -> exp.Expression:
        """``e`` with every column reference resolved against ``scope``."""
        if not allow_aggregates:
            found = next((n for n in e.walk() if is_aggregate(n)), None)
            if found is not None:
                raise BindError(
                    f"aggregate function {found.sql_name()} is not allowed here",
                    span=span_of(found),
                    hint="aggregates belong in the SELECT list or HAVING of a GROUP BY query",
                )
        if e.find(exp.Subquery, exp.Exists):
            raise PlanError(
                "subqueries in expressions are not supported", span=span_of(e.find(exp.Subquery))
            )

        def resolve(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column | exp.Dot) and not _is_star(node):
                if isinstance(node, exp.Dot) and not _is_path(node):
                    return node
                return scope.resolve(node)
            return node

        return e.copy().transform(resolve)

    def output_name(self, item: exp.Expression, index: int, taken: list[str]) -> str:
        """The name of a SELECT item: its alias, its column name, or EXPR$<index>."""
        if isinstance(item, exp.Alias):
            name = item.alias
        elif isinstance(item, exp.Column):
            name = item.name
        elif isinstance(item, exp.Dot) and isinstance(item.expression, exp.Identifier):
            name = item.expression.name
        else:
            name = f"EXPR${index}"
        return _unique(name, taken)


def _refuse_order(query: exp.Expression) -> None:
    """ORDER BY is refused; with a LIMIT, the hint is the Top-N that gives the first rows."""
    order = query.args.get("order")
    if order is None:
        return
    limited = query.args.get("limit") is not None
    hint = (
        f"for the first rows by an order, rank them (Top-N): {TOP_N_HINT}"
        if limited
        else "sort the result table, e.g. session.query(...).sort_by(...)"
    )
    raise PlanError("ORDER BY is not supported on streams yet", span=span_of(order), hint=hint)


def _refuse_updating_windows(node: PlanNode, table: CatalogTable, stmt: ast.Insert) -> None:
    """An append-only sink under a window aggregate that the emit settings made updating:
    say which setting did it.
    """
    for n in walk(node):
        if isinstance(n, WindowAggregate) and n.emit.updating:
            raise PlanError(
                f"INSERT INTO {table.name}: the window aggregation is updating because "
                f"{n.emit.because()}, but connector '{table.connector.name}' can only "
                "append rows",
                span=stmt.query.span or stmt.span,
                hint=f"{UPDATING_SINKS}, or RESET the setting for this query",
            )


def _check_emit_on_close(query: ast.Query, root: PlanNode) -> None:
    """EMIT ON WINDOW CLOSE asks for each window's final result once: the query must
    window its rows, and nothing in it may update a result after it was emitted.
    """
    if not query.emit_on_window_close:
        return
    span = query.emit_span or query.span
    if not any(isinstance(n, WindowAggregate | WindowTopN) for n in walk((root,))):
        raise PlanError(
            "EMIT ON WINDOW CLOSE needs a window aggregation or window Top-N",
            span=span,
            hint="group by window_start, window_end of a TUMBLE, HOP, CUMULATE or SESSION "
            "window; other queries emit each row as it comes",
        )
    if root.mode.updating:
        raise PlanError(
            f"EMIT ON WINDOW CLOSE: this query updates results it has emitted (from "
            f"{updates_origin(root)})",
            span=span,
            hint="drop EMIT ON WINDOW CLOSE, or aggregate only per window",
        )


def _is_star(e: exp.Expression) -> bool:
    return isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))


def _is_path(e: exp.Expression) -> bool:
    while isinstance(e, exp.Dot):
        e = e.this
    return isinstance(e, exp.Column)


def _unique(name: str, taken: list[str]) -> str:
    if name not in taken:
        return name
    i = 0
    while f"{name}{i}" in taken:
        i += 1
    return f"{name}{i}"


def _track_window(scope: Scope, internal: str, name: str, roles: dict[str, str]) -> None:
    for role, col in scope.window_columns.items():
        if col == internal:
            roles[role] = name


def implicitly_castable(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether INSERT may convert ``src`` to ``dst`` without an explicit CAST: within the
    numeric family towards wider or exact types, integers of any width (overflow is an
    error at run time), timestamps of any precision, and NULL to anything.
    """
    t = pa.types
    if src == dst or t.is_null(src):
        return True
    if t.is_integer(src):
        return t.is_integer(dst) or t.is_floating(dst) or t.is_decimal(dst)
    if t.is_floating(src):
        return t.is_floating(dst) and dst.bit_width >= src.bit_width
    if t.is_decimal(src):
        return t.is_decimal(dst) or t.is_floating(dst)
    if t.is_timestamp(src):
        return t.is_timestamp(dst) and (src.tz is None) == (dst.tz is None)
    if _is_text(src):
        return _is_text(dst)
    if t.is_date(src) or t.is_time(src) or t.is_boolean(src) or t.is_binary(src):
        return type(src) is type(dst)
    if t.is_struct(src) and t.is_struct(dst):
        return src.num_fields == dst.num_fields and all(
            implicitly_castable(src.field(i).type, dst.field(i).type) for i in range(src.num_fields)
        )
    if (t.is_list(src) and t.is_list(dst)) or (t.is_large_list(src) and t.is_list(dst)):
        return implicitly_castable(src.value_type, dst.value_type)
    if t.is_map(src) and t.is_map(dst):
        return implicitly_castable(src.key_type, dst.key_type) and implicitly_castable(
            src.item_type, dst.item_type
        )
    return False


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _check_castable(
    src: pa.DataType, dst: pa.DataType, src_name: str, dst_name: str, table: str, stmt
) -> None:
    if not implicitly_castable(src, dst):
        raise BindError(
            f"column '{src_name}' is {sql_type_name(src)} but {table}.{dst_name} is "
            f"{sql_type_name(dst)}",
            span=stmt.query.span or stmt.span,
            hint=f"CAST({src_name} AS {sql_type_name(dst)}) in the query",
        )
