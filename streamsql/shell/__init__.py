"""The interactive shell: read statements, run them, show their results."""

from streamsql.shell.app import Shell

__all__ = ["Shell"]
