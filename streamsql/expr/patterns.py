"""Pattern matching: LIKE / NOT LIKE [ESCAPE], SIMILAR TO, REGEXP, REGEXP_EXTRACT, REGEXP_REPLACE.

LIKE has no escape character unless ESCAPE names one (Calcite), so a backslash is an ordinary
character. Regular expressions are Java's as far as RE2 understands them (no look-around, no
back-references: a BindError says so for a constant pattern). REGEXP_EXTRACT's group defaults to
0 (the whole match, as Flink's ``SqlFunctionUtils.regexpExtract``) and gives NULL when nothing
matches or the group does not exist; REGEXP_REPLACE's replacement is literal text, as Flink
quotes it with ``Matcher.quoteReplacement``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from streamsql.expr import registry
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import Node, Value, lift_first
from streamsql.expr.strings import apply_kernel, int_arg, nulls_like, text_arg

BOOL = pa.bool_()


def like_to_arrow(pattern: str, escape: str | None) -> str:
    """A LIKE pattern with an optional escape character in Arrow's spelling (backslash escapes).

    >>> like_to_arrow("100!%", "!")
    '100\\\\%'
    >>> like_to_arrow("a\\\\b", None)
    'a\\\\\\\\b'
    """
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if escape and ch == escape and i + 1 < len(pattern):
            out.append("\\" + pattern[i + 1])
            i += 2
            continue
        out.append("\\\\" if ch == "\\" else ch)
        i += 1
    return "".join(out)


def similar_to_regex(pattern: str, escape: str | None) -> str:
    """A SQL SIMILAR TO pattern as an anchored RE2 regular expression."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if escape and ch == escape and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append("\\" + nxt if not nxt.isalnum() else nxt)
            i += 2
            continue
        out.append({"%": ".*", "_": "."}.get(ch, ch))
        i += 1
    return "^(?s:" + "".join(out) + ")$"


def check_regex(c: Compiler, node: Node) -> None:
    """BindError for a constant pattern that RE2 cannot compile."""
    if not node.is_const or not node.const.is_valid:
        return
    try:
        pc.match_substring_regex(pa.array([""]), node.const.as_py())
    except pa.ArrowInvalid as err:
        raise c.error(
            f"invalid regular expression {node.const.as_py()!r}: {err}", node.expr
        ) from err


def _escape_of(c: Compiler, e: exp.Expression) -> tuple[exp.Expression, str | None]:
    if not isinstance(e, exp.Escape):
        return e, None
    esc = c.compile(e.expression)
    if not esc.is_const or not isinstance(esc.const.as_py(), str) or len(esc.const.as_py()) != 1:
        raise c.error("ESCAPE must be a single-character string literal", e.expression)
    return e.this, esc.const.as_py()


@registry.handles(exp.Like, exp.ILike, exp.Escape, exp.SimilarTo)
def _like(c: Compiler, e: exp.Expression) -> Node:
    inner, escape = _escape_of(c, e)
    word = "SIMILAR TO" if isinstance(inner, exp.SimilarTo) else "LIKE"
    s = text_arg(c, inner.this, word)
    pattern = text_arg(c, inner.expression, word)
    negate = bool(inner.args.get("negate"))
    ignore_case = isinstance(inner, exp.ILike)
    if isinstance(inner, exp.SimilarTo):

        def match(x: Value, p: str) -> Value:
            return pc.match_substring_regex(x, similar_to_regex(p, escape))

    else:

        def match(x: Value, p: str) -> Value:
            return pc.match_like(x, like_to_arrow(p, escape), ignore_case=ignore_case)

    if negate:
        positive = match

        def match(x: Value, p: str) -> Value:
            return pc.invert(positive(x, p))

    return apply_kernel(c, inner, match, [s], [pattern], out=BOOL)


@registry.handles(exp.RegexpLike, names=("REGEXP", "REGEXP_LIKE"))
@registry.function("REGEXP")
def _regexp(c: Compiler, e: exp.Expression) -> Node:
    args = e.expressions if isinstance(e, exp.Anonymous) else [e.this, e.expression]
    if len(args) != 2:
        raise c.error("REGEXP takes 2 arguments (string, regex)", e)
    s, pattern = text_arg(c, args[0], "REGEXP"), text_arg(c, args[1], "REGEXP")
    check_regex(c, pattern)

    def search(x: Value, p: str) -> Value:
        return pc.match_substring_regex(x, p) if p else pc.if_else(True, False, pc.is_valid(x))

    return apply_kernel(c, e, search, [s], [pattern], out=BOOL)


def group_regex(regex: str, group: int) -> str | None:
    """``regex`` with capturing group ``group`` named ``g`` and the others non-capturing.

    None when the regex has fewer groups.

    >>> group_regex(r"foo(.*?)(bar)", 2)
    'foo(?:.*?)(?P<g>bar)'
    """
    if group == 0:
        return "(?P<g>" + _uncapture(regex, -1)[0] + ")"
    out, count = _uncapture(regex, group)
    return out if count >= group else None


def _uncapture(regex: str, keep: int) -> tuple[str, int]:
    out: list[str] = []
    count = 0
    i = 0
    in_class = False
    while i < len(regex):
        ch = regex[i]
        if ch == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            # a ']' right after '[' or '[^' is a literal member of the class
            j = i + 1 + (regex[i + 1 : i + 2] == "^")
            if regex[j : j + 1] == "]":
                out.append(regex[i : j + 1])
                i = j + 1
                continue
        elif ch == "(":
            named = regex.startswith("(?P<", i) or (
                regex.startswith("(?<", i) and regex[i + 3 : i + 4] not in ("=", "!")
            )
            if not regex.startswith("(?", i) or named:
                count += 1
                if named:
                    i = regex.index(">", i) + 1
                else:
                    i += 1
                out.append("(?P<g>" if count == keep else "(?:")
                continue
        out.append(ch)
        i += 1
    return "".join(out), count


@lift_first
def regexp_extract(s: Value, regex: str, group: int) -> Value:
    """The ``group`` of the first match of ``regex`` in ``s``; NULL without a match."""
    named = group_regex(regex, group) if group >= 0 else None
    if named is None:
        return nulls_like(s)
    return pc.struct_field(pc.extract_regex(s, named), [0])


@registry.handles(exp.RegexpExtract, names=("REGEXP_EXTRACT",))
def _regexp_extract(c: Compiler, e: exp.RegexpExtract) -> Node:
    s = text_arg(c, e.this, "REGEXP_EXTRACT")
    regex = text_arg(c, e.expression, "REGEXP_EXTRACT")
    check_regex(c, regex)
    group = e.args.get("group") or e.args.get("position")
    if group is None:
        return apply_kernel(c, e, lambda x, r: regexp_extract(x, r, 0), [s], [regex])
    return apply_kernel(c, e, regexp_extract, [s], [regex, int_arg(c, group, "REGEXP_EXTRACT")])


@registry.handles(exp.RegexpReplace, names=("REGEXP_REPLACE",))
def _regexp_replace(c: Compiler, e: exp.RegexpReplace) -> Node:
    s = text_arg(c, e.this, "REGEXP_REPLACE")
    regex = text_arg(c, e.expression, "REGEXP_REPLACE")
    check_regex(c, regex)
    replacement = e.args.get("replacement")
    repl = (
        text_arg(c, replacement, "REGEXP_REPLACE")
        if replacement is not None
        else c.constant(e, pa.scalar(""))
    )

    def replace(x: Value, r: str, to: str) -> Value:
        # RE2 reads \1 in the replacement as a group: double the backslashes to keep it literal
        return pc.replace_substring_regex(x, r, to.replace("\\", "\\\\"))

    return apply_kernel(c, e, replace, [s], [regex, repl])
