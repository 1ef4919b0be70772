"""Errors a user can act on.

Every error raised on bad input says *where* (file, column or key), *what* is wrong and
*what to do*. The CLI turns them into one message and exit code 2.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2


class DriftgateError(Exception):
    """Bad input: a file, column or key that cannot be used as given."""

    def __init__(self, where: str, problem: str, hint: str = "") -> None:
        self.where = str(where)
        self.problem = problem
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.problem}"
        return f"{text}\n  -> {self.hint}" if self.hint else text


class ConfigError(DriftgateError):
    """params.yaml is missing a key, has a wrong type or an out-of-range value."""


class DataError(DriftgateError):
    """A data file is missing, empty, or does not match the schema."""


def listed(items, limit: int = 6, quote: bool = False, sep: str = ", ") -> str:
    """Items for a message, never cut off silently: "a, b, c and 4 more".

    Every list a message shows goes through here (`quote` puts each item in quotes, `sep` joins
    whole sentences with "; "), so no message stops at an arbitrary item without saying so.
    """
    names = [f"'{item}'" if quote else str(item) for item in items]
    if len(names) <= limit:
        return sep.join(names)
    return f"{sep.join(names[:limit])} and {len(names) - limit} more"
