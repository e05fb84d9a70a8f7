"""Tab completion: keywords, the session's tables and columns, connectors and options."""

from __future__ import annotations

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from streamsql.session import Session
from streamsql.shell.completion import SqlCompleter


def completions(session: Session, text: str) -> list[str]:
    found = SqlCompleter(session.catalog).get_completions(Document(text), CompleteEvent())
    return [c.text for c in found]


def session() -> Session:
    s = Session()
    s.execute(
        "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT) "
        "WITH ('connector' = 'datagen', 'number-of-rows' = '1')"
    )
    s.execute("CREATE TABLE people (person_id BIGINT, name STRING) WITH ('connector' = 'datagen')")
    return s


def test_keywords_complete_in_the_case_typed() -> None:
    s = session()
    assert "SELECT" in completions(s, "SEL")
    assert "select" in completions(s, "sel")
    assert "GROUP BY" in completions(s, "SELECT * FROM bids GRO")


def test_tables_and_the_columns_of_the_tables_named() -> None:
    s = session()
    assert completions(s, "SELECT * FROM bi")[0] == "bids"  # tables first, then columns
    named = completions(s, "SELECT pri FROM bids")  # the cursor is at the end: 'bids'
    assert "bids" not in named
    assert completions(s, "SELECT pri")[:1] == ["price"]
    # Columns come from the tables the statement names.
    assert "person_id" not in completions(s, "SELECT p FROM bids WHERE p")
    assert "price" in completions(s, "SELECT p FROM bids WHERE p")
    assert "person_id" in completions(s, "SELECT p FROM people WHERE p")


def test_connectors_and_their_options_inside_with() -> None:
    s = session()
    assert completions(s, "CREATE TABLE t (x INT) WITH ('connector' = 'da") == [
        "datagen",
    ]
    options = completions(s, "CREATE TABLE t (x INT) WITH ('connector' = 'datagen', 'num")
    assert options == ["number-of-rows"]
    fs = completions(s, "CREATE TABLE t (x INT) WITH ('connector' = 'filesystem', 'pa")
    assert fs == ["path", "parquet.compression"]
    assert completions(s, "SELECT 'da") == []  # a string outside WITH: nothing to offer


def test_shell_commands_complete() -> None:
    s = session()
    assert completions(s, ".ta") == [".tables"]
    assert ".describe" in completions(s, ".d")
