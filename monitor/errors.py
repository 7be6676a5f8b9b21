"""The one base of every error a user can act on. The command line (`slamon.cli`) prints such an error as one
line, `error: <message>` and its hint, and exits with the error's `exit_code`; it never shows a traceback."""

from __future__ import annotations

# Exit codes of every `slamon` command (documented in the README and in `slamon --help`):
EXIT_OK = 0
EXIT_BREACH = 1  # the figures show a breach, when asked with --fail-on-breach
EXIT_USAGE = 2  # bad arguments or bad input (a contracts file, an events file, a config)
EXIT_NOTHING_ACCEPTED = 3  # the input held no acceptable event
EXIT_UNAVAILABLE = 4  # a service or tool slamon needs is unavailable (broker, Prometheus, Chromium, disk)
EXIT_INTERNAL = 70  # a bug: an exception no error class describes (EX_SOFTWARE of sysexits.h)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)

EXIT_CODES = (
    (EXIT_OK, "ok"),
    (EXIT_BREACH, "the figures show a breach (only with --fail-on-breach)"),
    (EXIT_USAGE, "usage or input error: bad arguments, a missing or invalid file"),
    (EXIT_NOTHING_ACCEPTED, "nothing accepted: the input held no valid event"),
    (EXIT_UNAVAILABLE, "a service or tool is unavailable (Kafka, Prometheus, Grafana, Chromium)"),
    (EXIT_INTERNAL, "internal error (a bug; SLAMON_DEBUG=1 shows the traceback)"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)


class SlamonError(Exception):
    """An error whose message says what went wrong and, in `hint`, what to do."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *args, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message, *args)
        if hint is not None:
            self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    hint: str | None = None


class UnavailableError(SlamonError):
    """A service or tool slamon needs does not answer or is not installed."""

    exit_code = EXIT_UNAVAILABLE


class NothingAcceptedError(SlamonError):
    """The input held no event the engine could accept."""

    exit_code = EXIT_NOTHING_ACCEPTED
