"""The one base of every error a user can act on. The command line (`slamon.cli`) prints such an error as one
line, `error: <message>` and its hint, and exits with the error's `exit_code`; it never shows a traceback."""

from __future__ import annotations

# Exit codes of every `slamon` command (documented in the README):
EXIT_OK = 0
EXIT_BREACH = 1  # the figures show a breach, when asked with --fail-on-breach
EXIT_USAGE = 2  # bad arguments or bad input (a contracts file, an events file, a config)
EXIT_NOTHING_ACCEPTED = 3  # the input held no acceptable event
EXIT_UNAVAILABLE = 4  # a service or tool slamon needs is unavailable (broker, Prometheus, Chromium, disk)


class SlamonError(Exception):
    """An error whose message says what went wrong and, in `hint`, what to do."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *args, hint: str | None = None) -> None:
        super().__init__(message, *args)
        if hint is not None:
            self.hint = hint

    hint: str | None = None
