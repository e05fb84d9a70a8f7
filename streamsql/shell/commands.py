"""The shell's own commands: ``.help``, ``.tables``, ``.describe NAME``, ``.timer on|off``,
``.mode table|changelog``, ``.maxrows N``, ``.quit`` — with psql's backslash spellings
(``\\?``, ``\\dt``, ``\\d NAME``, ``\\timing``, ``\\q``) as aliases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.table import Table

from streamsql.errors import StreamSQLError
from streamsql.output import print_table

if TYPE_CHECKING:
    from streamsql.shell.app import Shell


class CommandError(StreamSQLError):
    kind = "shell"


class Quit(Exception):
    """``.quit``: leave the shell."""


@dataclass(frozen=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    args: str
    help: str
    run: Callable[[Shell, list[str]], None]


def _help(shell: Shell, args: list[str]) -> None:
    view = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for heading in ("command", "also", "what it does"):
        view.add_column(heading)
    for c in COMMANDS:
        view.add_row(f"{c.name} {c.args}".strip(), " ".join(c.aliases), c.help)
    shell.console.print(view)
    shell.console.print(
        "SQL statements end with ';' and may span lines. SHOW TABLES, DESCRIBE, EXPLAIN, "
        "SET and RESET are statements too. Ctrl-C stops a running query, Ctrl-D leaves.",
        highlight=False,
    )


def _tables(shell: Shell, args: list[str]) -> None:
    print_table(shell.console, shell.session.show("TABLES"))


def _describe(shell: Shell, args: list[str]) -> None:
    if not args:
        _tables(shell, args)
        return
    print_table(shell.console, shell.session.describe(args[0]))


def _on_off(name: str, args: list[str], now: bool) -> bool:
    if not args:
        return not now
    word = args[0].lower()
    if word not in ("on", "off"):
        raise CommandError(f"{name} takes 'on' or 'off', not {args[0]!r}")
    return word == "on"


def _timer(shell: Shell, args: list[str]) -> None:
    shell.options.timer = _on_off(".timer", args, shell.options.timer)
    shell.say(f"timer {'on' if shell.options.timer else 'off'}")


def _mode(shell: Shell, args: list[str]) -> None:
    from streamsql.shell.results import MODES

    if not args:
        shell.say(f"mode {shell.options.mode} (continuous results as a {shell.options.mode})")
        return
    mode = {"tableau": "changelog"}.get(args[0].lower(), args[0].lower())  # Flink's names
    if mode not in MODES:
        raise CommandError(f".mode takes {' or '.join(MODES)}, not {args[0]!r}")
    shell.options.mode = mode
    shell.say(f"mode {mode}")


def _maxrows(shell: Shell, args: list[str]) -> None:
    if not args or not args[0].isdigit() or int(args[0]) < 1:
        raise CommandError(".maxrows takes a number of rows, e.g. .maxrows 50")
    shell.options.max_rows = int(args[0])
    shell.say(f"showing at most {shell.options.max_rows} rows")


def _quit(shell: Shell, args: list[str]) -> None:
    raise Quit


COMMANDS = (
    Command(".help", ("\\?", "\\h"), "", "this list", _help),
    Command(".tables", ("\\dt",), "", "the tables and views", _tables),
    Command(".describe", ("\\d",), "NAME", "a table's or view's columns", _describe),
    Command(".timer", ("\\timing",), "[on|off]", "show how long each statement takes", _timer),
    Command(".mode", (), "[table|changelog]", "continuous results: a live table or changes", _mode),
    Command(".maxrows", (), "N", "show at most N rows of a result", _maxrows),
    Command(".quit", (".exit", "\\q"), "", "leave (or Ctrl-D)", _quit),
)


def find(word: str) -> Command:
    """The command ``word`` names (a name, an alias, or a unique prefix of a name)."""
    for c in COMMANDS:
        if word == c.name or word in c.aliases:
            return c
    starting = [c for c in COMMANDS if c.name.startswith(word)]
    if len(starting) == 1 and len(word) > 1:
        return starting[0]
    raise CommandError(f"unknown command {word!r}", hint="type .help for the list")


def run_command(shell: Shell, line: str) -> None:
    word, *args = line.split()
    find(word).run(shell, args)
