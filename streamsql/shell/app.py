"""The interactive shell: ``streamsql`` with no arguments.

Statements end with ``;`` and may span lines; Enter on an unfinished one starts a new line.
History persists (``~/.streamsql_history``, or ``$STREAMSQL_HISTORY``), Tab completes
keywords, tables, columns and connector options, SQL is highlighted. Ctrl-C stops a running
query and returns to the prompt; Ctrl-D leaves. An error prints its message (pointing at
the SQL) and the session goes on. With standard input not a terminal, the statements read
from it run one after the other, as a script.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.key_binding.key_processor import KeyPressEvent
from prompt_toolkit.lexers import PygmentsLexer
from pygments.lexers.sql import SqlLexer
from rich.console import Console

from streamsql import __version__
from streamsql.errors import StreamSQLError
from streamsql.output import print_table
from streamsql.parser import ast, parse_script
from streamsql.progress import progress_display
from streamsql.session import QueryHandle, Session
from streamsql.shell.commands import Quit, run_command
from streamsql.shell.completion import SqlCompleter
from streamsql.shell.results import ResultOptions, show_query
from streamsql.shell.text import is_command, is_complete, split_statements

PROMPT = "streamsql> "
#: Flink's SQL client's setting for how results show; ``.mode`` here.
RESULT_MODE = "sql-client.execution.result-mode"
CONTINUATION = "        -> "


def history_path() -> Path:
    return Path(os.environ.get("STREAMSQL_HISTORY") or Path.home() / ".streamsql_history")


class Shell:
    """A session with a console: runs what the user types and shows what comes of it."""

    def __init__(self, session: Session, console: Console | None = None) -> None:
        self.session = session
        self.console = console or Console(highlight=False)
        self.options = ResultOptions()
        self.errors = 0

    def say(self, message: str) -> None:
        self.console.print(message, style="dim", markup=False, highlight=False)

    # -- one input ---------------------------------------------------------------------------

    def run(self, text: str) -> None:
        """Run one input: a shell command, or SQL statements (each on its own, so that an
        error in one leaves the others' effects in place).
        """
        if is_command(text):
            self._guarded(text.strip(), lambda: run_command(self, text.strip()), timed=False)
            return
        for piece in split_statements(text):
            self._guarded(piece, lambda piece=piece: self._statement(piece))

    def _guarded(self, source: str, action, timed: bool = True) -> None:
        began = time.perf_counter()
        try:
            action()
        except Quit:
            raise
        except StreamSQLError as e:
            self.errors += 1
            self.console.print(str(e.with_source(source)), style="red", markup=False)
        except KeyboardInterrupt:
            self.say("cancelled")
        except Exception as e:
            if os.environ.get("STREAMSQL_DEBUG"):
                raise
            self.errors += 1
            self.console.print(
                f"internal error: {type(e).__name__}: {e} (STREAMSQL_DEBUG=1 shows the traceback)",
                style="red",
                markup=False,
            )
        if timed and self.options.timer:
            self.say(f"time: {time.perf_counter() - began:.3f} s")

    def _statement(self, sql: str) -> None:
        for stmt in parse_script(sql):
            if isinstance(stmt, ast.Query):
                handle = QueryHandle(self.session, self.session.plan_statement(stmt), sql)
                ended = show_query(self.console, handle, self.options)
                if ended:
                    self.say(ended)
            elif isinstance(stmt, ast.Insert | ast.StatementSet):
                self._job(stmt, sql)
            elif isinstance(stmt, ast.Set) and stmt.key == RESULT_MODE:
                run_command(self, f".mode {stmt.value or ''}")
            else:
                output = self.session.run_statement(stmt, sql)
                if output.table is not None:
                    print_table(self.console, output.table, self.options.max_rows)
                elif output.message and isinstance(stmt, ast.Explain):
                    self.console.print(output.message, markup=False, highlight=False)
                elif output.message:
                    self.say(output.message)

    def _job(self, stmt: ast.Statement, sql: str) -> None:
        """An INSERT job: a bounded one runs to its end; an unbounded one until Ctrl-C.
        On a terminal its progress shows while it runs, as with ``streamsql run``.
        """
        display = progress_display(self.console, None, quiet=False)
        try:
            if display is None:
                output = self.session.run_statement(stmt, sql)
            else:
                with display.watching(self.session):
                    output = self.session.run_statement(stmt, sql)
        except KeyboardInterrupt:
            result = self.session.last_result
            self.say("stopped by interrupt")
            if result is not None:
                self.say(result.summary())
            return
        self.say(output.message or "")

    # -- reading input ---------------------------------------------------------------------

    def interact(self) -> int:
        """The prompt loop, until Ctrl-D or ``.quit``."""
        prompt: PromptSession[str] = PromptSession(
            history=FileHistory(str(history_path())),
            lexer=PygmentsLexer(SqlLexer),
            completer=SqlCompleter(self.session.catalog),
            complete_while_typing=False,
            multiline=True,
            key_bindings=_keys(),
            prompt_continuation=lambda width, line, wrap: CONTINUATION,
        )
        self.say(
            f"streamsql {__version__}: end statements with ';', .help for help, Ctrl-D to leave"
        )
        while True:
            try:
                text = prompt.prompt(PROMPT)
            except KeyboardInterrupt:
                continue  # the line is dropped
            except EOFError:
                return 0
            try:
                self.run(text)
            except Quit:
                return 0

    def run_script(self, text: str) -> int:
        """Statements from a file or a pipe: each runs; errors are shown and counted."""
        lines: list[str] = []
        for line in text.splitlines():
            if not lines and is_command(line):
                self._run_or_quit(line)
                continue
            lines.append(line)
            if is_complete("\n".join(lines)):
                self._run_or_quit("\n".join(lines))
                lines = []
        if any(split_statements("\n".join(lines))):
            self._run_or_quit("\n".join(lines) + ";")
        return 1 if self.errors else 0

    def _run_or_quit(self, text: str) -> None:
        try:
            self.run(text)
        except Quit:
            raise SystemExit(1 if self.errors else 0) from None


def _keys() -> KeyBindings:
    keys = KeyBindings()

    @keys.add("enter")
    def _(event: KeyPressEvent) -> None:
        """Run the input once it is whole (ends with ';'), else start a new line."""
        buffer = event.current_buffer
        if buffer.complete_state is not None:  # Enter picks the highlighted completion
            completion = buffer.complete_state.current_completion
            if completion is not None:
                buffer.apply_completion(completion)
                return
        if is_complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    @keys.add("escape", "enter")
    def _(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return keys
