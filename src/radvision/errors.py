"""The one exception type for user errors in radvision, and the helpers its messages share."""

import difflib
from collections.abc import Sequence


def message(exc: BaseException) -> str:
    """An exception's message as its raiser wrote it.  An error raised in a DataLoader worker reaches the main
    process re-raised with the worker's whole traceback as its message; this keeps only the original one."""
    text = str(exc)
    if text.startswith("Caught ") and "\nOriginal Traceback" in text:
        kind = type(exc)
        origin = f"\n{kind.__qualname__}: " if kind.__module__ == "builtins" else f"\n{kind.__module__}.{kind.__qualname__}: "
        _, found, original = text.rpartition(origin)
        if found:
            return original.strip()
    return text


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when empty): enough to name a failure in a
    one-sentence error or an `error` column, without a library's multi-line advice."""
    text = message(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def some_names(names: Sequence[str], shown: int = 3) -> str:
    """"a, b, c and 4 more": the first few of a list of names, for a one-sentence error."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def closest(value: object, choices: Sequence[object]) -> str | None:
    """The choice closest to `value` (case-insensitive), or None when none is close."""
    lowered = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(value).lower(), list(lowered), n=1)
    return lowered[close[0]] if close else None


def did_you_mean(value: object, choices: Sequence[object]) -> str:
    """' (did you mean 'X'?)' for the closest choice (case-insensitive), or ''."""
    near = closest(value, choices)
    return f" (did you mean {near!r}?)" if near is not None else ""


class RadvisionError(ValueError):
    """A user error (bad path, column, config key, backbone or loss name): the message is one sentence
    that names the problem and the valid choices. The CLI prints it and exits with code 2."""
