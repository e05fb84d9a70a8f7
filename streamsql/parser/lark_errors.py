"""Turning lark's syntax errors into ParseErrors that say what to fix.

Lark reports the offending token and the terminals it expected. ``from_lark`` finds the
offending text again (a whole word, a string, or the end of the script), looks at the
tokens on the parser's stack to learn where it was (a column list, a WITH clause, ...),
and asks each rule in ``RULES`` in turn for a message and a hint; the first answer wins.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from streamsql.errors import ParseError, closest
from streamsql.parser.keywords import EXPLAIN_DETAILS, STATEMENT_KEYWORDS
from streamsql.parser.positions import LineIndex

_IGNORED = {"WS", "LINE_COMMENT", "BLOCK_COMMENT"}
_SHOWN = {
    "NAME": "a name",
    "QUOTED_NAME": "a name",
    "STRING": "a quoted string",
    "INT": "a number",
    "EXPR_ATOM": "an expression",
    "QUERY_TEXT": "the rest of the query",
    "$END": "the end of the script",
    "_SEMI": "';'",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "_COMMA": "','",
    "_EQUAL": "'='",
    "_DOT": "'.'",
    "_LT": "'<'",
    "_GT": "'>'",
}
_CLOSED = {
    "'": re.compile(r"'(?:[^']|'')*'"),
    "`": re.compile(r"`(?:[^`]|``)+`"),
    '"': re.compile(r'"(?:[^"]|"")+"'),
}
_WORD = re.compile(r"[\w$]+")
_OPTION_HINT = "write each option as 'key' = 'value', both in single quotes"


@dataclass(frozen=True)
class Site:
    """Where the parser stopped: the offending text, what it wanted, what it had read."""

    text: str
    pos: int
    seen: str  # the offending text; "" at the end of the script
    expected: frozenset[str]
    stack: tuple[object, ...]  # the parser's value stack: tokens and subtrees read so far

    @property
    def at_end(self) -> bool:
        return self.seen == ""

    @property
    def word(self) -> str:
        """The offending text in upper case when it is a word, else ""."""
        return self.seen.upper() if _WORD.fullmatch(self.seen) else ""

    @property
    def context(self) -> list[str]:
        """Token types and rule names read so far in the current statement."""
        names = [x.type if isinstance(x, Token) else str(x.data) for x in self.stack]
        done = [i for i, name in enumerate(names) if name.startswith("__start")]
        return names[done[-1] + 1 :] if done else names

    def wants(self, *names: str) -> bool:
        return any(n in self.expected for n in names)


#: A rule recognises one kind of mistake and returns (message, hint), or None.
Rule = Callable[[Site], "tuple[str, str | None] | None"]


def from_lark(err: UnexpectedInput, text: str) -> ParseError:
    """The ParseError for lark's ``err`` while parsing the script ``text``."""
    site = _site(err, text)
    message, hint = next(
        (answer for rule in RULES if (answer := rule(site)) is not None), _generic(site)
    )
    span = LineIndex(text).span(site.pos, site.pos + max(1, len(site.seen)))
    return ParseError(message, span=span, sql=text, hint=hint)


def _site(err: UnexpectedInput, text: str) -> Site:
    expected: set[str] = set()
    if isinstance(err, UnexpectedToken):
        tok = err.token
        pos = tok.end_pos if tok.type == "$END" else tok.start_pos
        expected = set(err.expected)
        at_end = tok.type == "$END"
    elif isinstance(err, UnexpectedCharacters):
        pos, expected, at_end = err.pos_in_stream, set(err.allowed or ()), False
    else:
        pos = len(text)
        expected = set(getattr(err, "expected", ()) or ())
        at_end = isinstance(err, UnexpectedEOF)
    pos = min(pos if pos is not None else len(text), len(text))
    at_end = at_end or pos >= len(text)
    while not at_end and pos > 0 and _is_word(text[pos]) and _is_word(text[pos - 1]):
        pos -= 1  # point at the whole word, not at the part after a keyword's prefix
    parser = getattr(err, "interactive_parser", None)
    stack = tuple(parser.parser_state.value_stack) if parser is not None else ()
    seen = "" if at_end else _offending(text, pos)
    return Site(text, pos, seen, frozenset(expected - _IGNORED), stack)


def _offending(text: str, pos: int) -> str:
    ch = text[pos]
    if ch in _CLOSED:
        closed = _CLOSED[ch].match(text, pos)
        return closed.group() if closed else ch
    word = _WORD.match(text, pos)
    return word.group() if word else ch


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def _shown(names: frozenset[str]) -> str:
    items = sorted({_SHOWN.get(n, n.lstrip("_")) for n in names})
    if len(items) > 8:
        items = [*items[:7], "..."]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


# ------------------------------------------------------------------------------ rules


def _unterminated(site: Site) -> tuple[str, str | None] | None:
    if site.seen in ("'",):
        return "unterminated string", "close the string with ' (write '' for a quote inside it)"
    if site.seen in ("`", '"'):
        return "unterminated quoted name", f"close the name with {site.seen}"
    if site.text.startswith("/*", site.pos) and "*/" not in site.text[site.pos :]:
        return "unterminated comment", "close the comment with */"
    return None


def _unknown_statement(site: Site) -> tuple[str, str | None] | None:
    if not {"_CREATE", "_DROP", "_SELECT"} <= site.expected:
        return None
    starts = "a statement starts with " + ", ".join(STATEMENT_KEYWORDS)
    if not site.word:
        return f"unexpected {site.seen!r} where a statement should start", starts
    hint = _did_you_mean(site.word, STATEMENT_KEYWORDS) or starts
    return f"unknown statement {site.seen!r}", hint


def _statement_set(site: Site) -> tuple[str, str | None] | None:
    if "_STATEMENT" not in site.context:
        return None
    if site.at_end:
        return (
            "the statement set is not closed",
            "end each INSERT with ';' and close the set with END",
        )
    if site.word in STATEMENT_KEYWORDS and site.wants("_INSERT"):
        return (
            f"only INSERT statements can appear in a statement set, not {site.word}",
            "run other statements before EXECUTE STATEMENT SET or after its END",
        )
    return None


def _missing_semicolon(site: Site) -> tuple[str, str | None] | None:
    if site.word in STATEMENT_KEYWORDS and site.wants("_SEMI", "$END"):
        return f"missing ';' before {site.word}", "end each statement with ';'"
    return None


def _trailing_comma(site: Site) -> tuple[str, str | None] | None:
    before = site.text[: site.pos].rstrip()
    if site.seen == ")" and before.endswith(",") and site.wants("NAME", "STRING"):
        return "unexpected ')' after ','", "remove the trailing ','"
    return None


def _options(site: Site) -> tuple[str, str | None] | None:
    context = site.context
    if not any(pair == ("_WITH", "_LPAR") for pair in itertools.pairwise(context)):
        return None
    if site.wants("_RPAR") and (site.at_end or site.seen == ";" or site.word in STATEMENT_KEYWORDS):
        return "missing ')' to close WITH (...)", "add ')' after the last option"
    if site.wants("STRING") and not site.seen.startswith("'"):
        return "option keys and values must be quoted strings", _OPTION_HINT
    if site.wants("_EQUAL"):
        return f"expected '=' between the option key and its value, not {site.seen!r}", _OPTION_HINT
    if site.wants("_COMMA") and site.seen.startswith("'"):
        return "missing ',' between options", _OPTION_HINT
    return None


def _watermark(site: Site) -> tuple[str, str | None] | None:
    context = site.context
    if "_WATERMARK" not in context or not site.wants("_AS"):
        return None
    names = [x for x in site.stack if isinstance(x, Tree) and x.data == "name"]
    column = str(names[-1].children[0]) if names else "ts"
    return (
        f"WATERMARK FOR {column} needs AS and an expression",
        f"write WATERMARK FOR {column} AS {column} - INTERVAL '5' SECOND",
    )


def _create_table(site: Site) -> tuple[str, str | None] | None:
    context = site.context
    if not {"_create_table", "_LPAR"} <= set(context):  # inside the column list
        return None
    if site.wants("_RPAR") and (
        site.at_end or site.seen == ";" or site.word in {"WITH", "COMMENT", *STATEMENT_KEYWORDS}
    ):
        return "missing ')' to close the column list", "add ')' after the last column"
    if site.word == "METADATA":
        return "METADATA columns are not supported", "declare a physical or a computed column"
    if site.wants("_LOCAL"):
        return (
            f"unexpected {site.seen!r} in TIMESTAMP WITH ... TIME ZONE",
            "Flink has TIMESTAMP(p) WITH LOCAL TIME ZONE (also spelt TIMESTAMP_LTZ(p))",
        )
    if site.word and site.wants("_COMMA") and not site.wants("NAME"):
        return f"unexpected {site.seen!r}", "a ',' may be missing between two columns"
    return None


def _set_reset(site: Site) -> tuple[str, str | None] | None:
    context = site.context
    if "_STATEMENT" in context or not context:
        return None
    if context[0] == "_SET":
        return "SET takes a quoted key and value", "write SET 'key' = 'value'"
    if context[0] == "_RESET":
        return "RESET takes a quoted key", "write RESET 'key', or RESET alone for all keys"
    return None


def _explain(site: Site) -> tuple[str, str | None] | None:
    if "_EXPLAIN" in site.context and site.word in ("ANALYZE", "ANALYSE"):
        return "ANALYZE comes right after EXPLAIN", "write EXPLAIN ANALYZE [VERBOSE] <query>"
    if "_EXPLAIN" not in site.context or not site.wants("VERBOSE") or not site.word:
        return None
    if site.word in STATEMENT_KEYWORDS:
        return (
            f"EXPLAIN cannot explain {site.word}",
            "EXPLAIN takes a query, an INSERT or a statement set",
        )
    hint = _did_you_mean(site.word, EXPLAIN_DETAILS) or (
        "EXPLAIN details are " + ", ".join(EXPLAIN_DETAILS)
    )
    return f"unknown EXPLAIN detail {site.seen!r}", hint


def _show(site: Site) -> tuple[str, str | None] | None:
    if site.context[-1:] != ["_SHOW"]:
        return None
    return f"cannot SHOW {site.seen or 'nothing'}", "write SHOW TABLES or SHOW VIEWS"


def _generic(site: Site) -> tuple[str, str | None]:
    expected = _shown(site.expected)
    tail = f"; expected {expected}" if expected else ""
    if site.at_end:
        return f"unexpected end of script{tail}", None
    keywords = [n.lstrip("_") for n in site.expected if n not in _SHOWN]
    return f"unexpected {site.seen!r}{tail}", _did_you_mean(site.word, keywords)


def _did_you_mean(word: str, keywords: Iterable[str]) -> str | None:
    near = closest(word, keywords, n=1) if word else []
    return f"did you mean {near[0]}?" if near else None


#: Asked in order; the first rule that recognises the situation explains it.
RULES: tuple[Rule, ...] = (
    _unterminated,
    _unknown_statement,
    _statement_set,
    _missing_semicolon,
    _trailing_comma,
    _options,
    _watermark,
    _create_table,
    _set_reset,
    _explain,
    _show,
)
