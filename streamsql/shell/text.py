"""What the shell needs to know about the text typed so far: whether it is a whole
statement (ended by ``;`` outside quotes and comments), and where statements end.
"""

from __future__ import annotations

from collections.abc import Iterator

#: Lines that are shell commands rather than SQL: complete without a ``;``.
COMMAND_PREFIXES = (".", "\\")


def is_command(text: str) -> bool:
    return text.lstrip().startswith(COMMAND_PREFIXES)


def _code_ends(text: str) -> Iterator[tuple[int, bool]]:
    """(index, outside) for each ``;`` in ``text``, and finally (len, whether the text ends
    outside any quote or block comment).
    """
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"`":
            close = text.find(c, i + 1)
            while close != -1 and close + 1 < n and text[close + 1] == c:  # a doubled quote
                close = text.find(c, close + 2)
            if close == -1:
                yield n, False
                return
            i = close + 1
            continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end == -1 else end + 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                yield n, False
                return
            i = end + 2
            continue
        if c == ";":
            yield i, True
        i += 1
    yield n, True


def is_complete(text: str) -> bool:
    """Whether Enter should run ``text``: a shell command, nothing at all, or SQL whose last
    code (after comments and blanks) is a ``;`` outside quotes and comments.
    """
    if not _has_code(text) or is_command(text):
        return True
    last_semicolon = -1
    for index, outside in _code_ends(text):
        if index == len(text):
            if not outside:
                return False
            break
        last_semicolon = index
    if last_semicolon < 0:
        return False
    rest = text[last_semicolon + 1 :]
    return not list(_statements_in(rest))


def _statements_in(text: str) -> Iterator[str]:
    for statement in split_statements(text):
        if statement.strip():
            yield statement


def split_statements(text: str) -> list[str]:
    """The statements of ``text`` without their ``;`` (comments-only pieces dropped)."""
    out, start = [], 0
    for index, _ in _code_ends(text):
        piece = text[start:index]
        if _has_code(piece):
            out.append(piece.strip())
        start = index + 1
    return out


def _has_code(piece: str) -> bool:
    """Whether ``piece`` holds anything but blanks and comments."""
    i, n = 0, len(piece)
    while i < n:
        if piece[i].isspace():
            i += 1
        elif piece.startswith("--", i):
            end = piece.find("\n", i)
            i = n if end == -1 else end + 1
        elif piece.startswith("/*", i):
            end = piece.find("*/", i + 2)
            i = n if end == -1 else end + 2
        else:
            return True
    return False
