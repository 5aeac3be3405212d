"""Reading what a user hands in, safely: JSON that cannot blow the stack or trip Python's integer limit
(``parse_json``), and paths that are not regular files (``special_file``: a FIFO would block a read forever).

The domain's loaders (corpus, eval sets) and the adapters' state files (aliases.json, snapshot records) use
them, so every reader refuses the same inputs with the same words. Imports nothing from ragdeck.
"""

from __future__ import annotations

import json
import re
import stat
import sys
from pathlib import Path
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "parse_json", "special_file"]

# Arrays and objects nested deeper than this are refused: no corpus line, eval record or state file needs
# more, and code that walks a value (payload conversion, json.dumps) recurses once per level.
MAX_JSON_DEPTH = 64

_DIGITS = re.compile(r"\d+")


def parse_json(text: str) -> Any:
    """``json.loads`` that refuses, as ``json.JSONDecodeError`` (so a ValueError), what it would otherwise
    raise other errors for or accept dangerously: arrays / objects nested more than ``MAX_JSON_DEPTH`` levels
    (deeper ones raise RecursionError in json itself), and integers with more digits than Python converts
    (``sys.get_int_max_str_digits()``, 4300 by default). ``exc.msg`` says what to do, ``exc.colno`` where.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise _deep_error(text) from None
    except ValueError:  # int-to-str limit; json.JSONDecodeError is caught above
        raise _long_int_error(text) from None
    if isinstance(value, dict | list) and _depth_over(value, MAX_JSON_DEPTH):
        raise _deep_error(text)
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """True when ``value`` nests arrays / objects more than ``limit`` levels (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _deep_error(text: str) -> json.JSONDecodeError:
    """Where the nesting passes ``MAX_JSON_DEPTH`` (brackets inside strings are skipped)."""
    message = f"arrays or objects nested more than {MAX_JSON_DEPTH} levels deep (flatten the value)"
    depth, in_string, escaped = 0, False, False
    for pos, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return json.JSONDecodeError(message, text, pos)
        elif char in "]}":
            depth -= 1
    return json.JSONDecodeError(message, text, 0)


def _long_int_error(text: str) -> json.JSONDecodeError:
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300
    found = max(_DIGITS.finditer(text), key=lambda m: len(m.group(0)), default=None)
    pos = found.start() if found else 0
    digits = len(found.group(0)) if found else limit + 1
    return json.JSONDecodeError(
        f"a number of {digits} digits (over {limit}: write long ids as strings, in quotes)", text, pos
    )


_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_file(path: Path | str) -> str | None:
    """What ``path`` is when it is neither a regular file nor a folder ("a named pipe (FIFO)", "a character
    device", "a block device", "a socket"), else None (also when it does not exist). Reading a FIFO blocks
    until a writer comes, so readers refuse these before opening them."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None
    return next((name for test, name in _SPECIAL if test(mode)), None)
