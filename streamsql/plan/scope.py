"""Name resolution: which plan column a SQL name (``price``, ``b.price``, ``r.a.b``) means."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from streamsql.errors import BindError, did_you_mean
from streamsql.parser.spans import span_of
from streamsql.plan.nodes import PlanNode, WindowSpec


@dataclass(frozen=True)
class ScopeColumn:
    """A column visible to SQL: its user-facing name, the plan column holding it, and the
    table names or aliases that may qualify it.
    """

    name: str
    internal: str
    qualifiers: frozenset[str] = frozenset()
    #: Reachable only qualified, and not in ``*`` (the right column of a JOIN … USING).
    hidden: bool = False


@dataclass(frozen=True)
class Scope:
    """The columns a FROM clause makes visible, over the plan node that produces them."""

    node: PlanNode
    columns: tuple[ScopeColumn, ...]
    #: The window table function whose window_start/window_end columns are in scope.
    window: WindowSpec | None = None
    window_columns: dict[str, str] = field(default_factory=dict)  # role -> internal name

    @classmethod
    def of(cls, node: PlanNode, qualifier: str | None = None) -> Scope:
        quals = frozenset([qualifier]) if qualifier else frozenset()
        return cls(node, tuple(ScopeColumn(n, n, quals) for n in node.schema.names))

    def requalified(self, qualifier: str | None) -> Scope:
        """The same columns, qualified by ``qualifier`` only (a subquery or TVF alias)."""
        quals = frozenset([qualifier]) if qualifier else frozenset()
        cols = tuple(ScopeColumn(c.name, c.internal, quals, c.hidden) for c in self.columns)
        return Scope(self.node, cols, self.window, self.window_columns)

    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def star(self, qualifier: str | None, at: exp.Expression) -> list[ScopeColumn]:
        if qualifier is None:
            return [c for c in self.columns if not c.hidden]
        cols = [c for c in self.columns if qualifier in c.qualifiers]
        if not cols:
            quals = sorted({q for c in self.columns for q in c.qualifiers})
            raise BindError(
                f"unknown table '{qualifier}' in {qualifier}.*",
                span=span_of(at),
                hint=did_you_mean(qualifier, quals, "table"),
            )
        return cols

    # -- resolution ------------------------------------------------------------------------

    def resolve(self, e: exp.Column | exp.Dot) -> exp.Expression:
        """A bound expression for a column reference: an unqualified ``exp.Column`` naming
        a plan column, wrapped in ``exp.Dot`` for each nested ROW field.
        """
        parts = _path(e)
        if parts is None:
            raise BindError(f"cannot resolve {e.sql()}", span=span_of(e))
        names = [p.name for p in parts]
        # Try "qualifier.column.fields..." first, then "column.fields...".
        if len(names) >= 2:
            col = self._find(names[1], qualifier=names[0])
            if col is not None:
                return _with_fields(col.internal, parts[1], parts[2:])
        col = self._find(names[0])
        if col is not None:
            return _with_fields(col.internal, parts[0], parts[1:])
        if len(names) >= 2 and not any(names[0] in c.qualifiers for c in self.columns):
            quals = sorted({q for c in self.columns for q in c.qualifiers})
            if quals and names[0] not in self.names():
                raise BindError(
                    f"unknown table '{names[0]}' in '{'.'.join(names)}'",
                    span=span_of(parts[0]),
                    hint=did_you_mean(names[0], quals, "table"),
                )
        target = names[1] if len(names) >= 2 and self._is_qualifier(names[0]) else names[0]
        at = parts[1] if target is not names[0] else parts[0]
        raise BindError(
            f"unknown column '{target}'",
            span=span_of(at),
            hint=did_you_mean(target, self.names(), "column"),
        )

    def _is_qualifier(self, name: str) -> bool:
        return any(name in c.qualifiers for c in self.columns)

    def _find(self, name: str, qualifier: str | None = None) -> ScopeColumn | None:
        if qualifier is None:
            pool = [c for c in self.columns if not c.hidden]
        else:
            pool = [c for c in self.columns if qualifier in c.qualifiers]
        exact = [c for c in pool if c.name == name]
        if not exact:
            exact = [c for c in pool if c.name.lower() == name.lower()]
        if len(exact) > 1:
            raise BindError(
                f"column '{name}' is ambiguous",
                hint="qualify it with its table name or alias",
            )
        return exact[0] if exact else None


def _path(e: exp.Expression) -> list[exp.Identifier] | None:
    """The identifiers of ``db.table.col`` / ``a.b.c.d`` in order, outermost first."""
    if isinstance(e, exp.Column):
        parts = [p for p in (e.args.get("catalog"), e.args.get("db"), e.args.get("table")) if p]
        this = e.this
        if isinstance(this, exp.Star):
            return None
        return [*parts, this]
    if isinstance(e, exp.Dot):
        head = _path(e.this)
        if head is None or not isinstance(e.expression, exp.Identifier):
            return None
        return [*head, e.expression]
    return None


def _with_fields(internal: str, at: exp.Identifier, fields: list[exp.Identifier]) -> exp.Expression:
    col = exp.Column(this=exp.Identifier(this=internal, quoted=True))
    _copy_meta(at, col.this)
    out: exp.Expression = col
    for f in fields:
        ident = exp.Identifier(this=f.name, quoted=True)
        _copy_meta(f, ident)
        out = exp.Dot(this=out, expression=ident)
    return out


def _copy_meta(src: exp.Expression, dst: exp.Expression) -> None:
    meta = getattr(src, "_meta", None)
    if meta:
        dst.meta.update(meta)
