"""The contract every ``python -m utils.<command>`` keeps, so scripts and a class can rely on it.

Exit status: 0 done; 1 some inputs failed (each named on stderr, the others done); 2 nothing could
be done (usage, no dataset, an unusable model or file). A user's mistake prints one ``error:`` line
naming the file and what is wrong, never a traceback; ``--debug`` or ``HTR_DEBUG=1`` shows the
traceback for a bug report.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
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
