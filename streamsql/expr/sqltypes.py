"""sqlglot ``DataType`` nodes (the target of CAST) to Arrow types, through ``TypeSpec``.

sqlglot spells some Flink types its own way (STRING is TEXT, TIMESTAMP_LTZ is TIMESTAMPLTZ,
BYTES is a user-defined type); this maps them back so ``streamsql.types`` decides the Arrow type.
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from streamsql.errors import BindError
from streamsql.parser.spans import span_of
from streamsql.types import TypeSpec

_RENAMES = {
    "TEXT": "STRING",
    "TIMESTAMPLTZ": "TIMESTAMP_LTZ",
    "TIMESTAMPTZ": "TIMESTAMP_LTZ",
    "STRUCT": "ROW",
    "NCHAR": "CHAR",
    "NVARCHAR": "VARCHAR",
    "USER-DEFINED": "",
}


def type_spec(dt: exp.DataType) -> TypeSpec:
    """The ``TypeSpec`` a sqlglot data type stands for."""
    name = dt.this.value if isinstance(dt.this, exp.DType) else str(dt.this)
    name = _RENAMES.get(name, name) or str(dt.args.get("kind") or "").upper()
    params: list[int] = []
    args: list[TypeSpec] = []
    fields: list[tuple[str, TypeSpec]] = []
    for p in dt.expressions:
        match p:
            case exp.DataTypeParam():
                params.append(int(p.this.name))
            case exp.DataType():
                args.append(type_spec(p))
            case exp.ColumnDef():
                fields.append((p.name, type_spec(p.args["kind"])))
    if name in ("CHAR", "VARCHAR", "BINARY", "VARBINARY"):
        params = []  # the length is not enforced: all strings are STRING
    return TypeSpec(name, tuple(params), tuple(args), tuple(fields), span=span_of(dt))


def arrow_type(dt: exp.DataType, at: exp.Expression | None = None) -> pa.DataType:
    """The Arrow type of a sqlglot data type; BindError (pointing at ``at``) if unknown."""
    try:
        return type_spec(dt).to_arrow()
    except BindError as err:
        if err.span is None:
            err.span = span_of(at)
        raise
