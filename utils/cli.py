"""The contract every ``python -m utils.<command>`` keeps, so scripts and a class can rely on it.

Exit status: 0 done; 1 some inputs failed (each named on stderr, the others done); 2 nothing could
be done (usage, no dataset, an unusable model or file). A user's mistake prints one ``error:`` line
naming the file and what is wrong, never a traceback; ``--debug`` or ``HTR_DEBUG=1`` shows the
traceback for a bug report.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_NOTHING_DONE = 2
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C
DEBUG_FLAG = "--debug"


class UserError(Exception):
    """A problem with what the user gave (a file, a setting, an argument): its message says what and where."""


# What a user's input or setup raises: reported in one line. Anything else is a bug and keeps its traceback.
USER_ERRORS = (UserError, OSError, ValueError, UnicodeError)


# --- Numbers a user types (arguments, ids in files, settings): one rule for the whole series ----------------
# ASCII digits only, as IAM's ids are: int() and float() would also take "٣" (an Arabic-Indic three), "1_0", "+3",
# " 3 ", "nan" and "1e999", and each of those once slipped through somewhere.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")
_DECIMAL_NUMBER = re.compile(r"(?:[0-9]{1,18}(?:\.[0-9]{0,18})?|\.[0-9]{1,18})")


def whole_number(text: str) -> int:
    """``text`` as an int: 0 or more, ASCII digits only; ValueError naming it otherwise."""
    if not isinstance(text, str) or not _WHOLE_NUMBER.fullmatch(text):
        raise ValueError(f"{text!r} is not a whole number (digits 0-9 only)")
    return int(text)


def positive_number(text: str) -> float:
    """``text`` as a float above 0, written with ASCII digits and an optional decimal point (no sign, exponent,
    nan or inf); ValueError naming it otherwise."""
    if not isinstance(text, str) or not _DECIMAL_NUMBER.fullmatch(text) or float(text) <= 0:
        raise ValueError(f"{text!r} is not a number above 0 (digits 0-9 and a decimal point, such as 7.5)")
    return float(text)


def check_positive(value: float, name: str) -> float:
    """``value`` when it is a finite number above 0 (a time budget, a size); ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number above 0, not {value!r}")
    return float(value)


def argument(parse: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse ``type`` from a parser above: its ValueError becomes argparse's one-line usage error."""

    def parse_argument(text: str):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse_argument.__name__ = parse.__name__  # argparse names the type in its messages
    return parse_argument


# --- Files a user names --------------------------------------------------------------------------------------
_NOT_FILES = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a device"),
              (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))  # fmt: skip


def read_user_file(path: Path | str, max_bytes: int, limit_name: str, check_start: Callable[[bytes], None] | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (``limit_name`` says where that limit is set).

    Raises ValueError saying what is wrong, without the path (the caller names it): no such file, a folder, a
    FIFO or a device (never opened: a FIFO would hang), empty, too large. ``check_start`` sees the first 64 bytes
    before the rest is read, so a large file of the wrong kind is refused from its header, not after reading it all.
    """
    try:
        info = os.stat(path)  # follows a symbolic link to what it points at (/dev/zero is a device)
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except OSError as error:
        raise ValueError(f"cannot be read ({error.strerror or error})") from None
    for test, kind in _NOT_FILES:
        if test(info.st_mode):
            raise ValueError(f"{kind}, not a file")
    too_large = f"more than the limit of {max_bytes:,} bytes ({limit_name})"
    if info.st_size == 0:
        raise ValueError("the file is empty")
    if info.st_size > max_bytes:
        raise ValueError(f"too large: {info.st_size:,} bytes, {too_large}")
    with open(path, "rb") as file:
        data = file.read(64)
        if check_start is not None:
            check_start(data)
        data += file.read(max_bytes + 1 - len(data))  # a file that grew since it was looked at stops at the limit
    if len(data) > max_bytes:
        raise ValueError(f"too large: {too_large}")
    return data


def debug_mode() -> bool:
    """True when ``HTR_DEBUG`` is set to a true value or ``--debug`` is on the command line."""
    return DEBUG_FLAG in sys.argv or os.environ.get("HTR_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def run(main: Callable[[], int]) -> NoReturn:
    """Run a command's ``main()`` under the contract above and exit with its status."""
    debug = debug_mode()
    while DEBUG_FLAG in sys.argv:  # the commands' own parsers do not know the flag
        sys.argv.remove(DEBUG_FLAG)
    try:
        status = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"error: {error} (--debug shows the traceback)", file=sys.stderr)
        sys.exit(EXIT_NOTHING_DONE)
    sys.exit(status)
