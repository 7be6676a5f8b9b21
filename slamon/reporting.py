"""Errors as messages: `report(err)` prints an exception as `error: ...` (and `hint: ...`) on stderr and returns
the exit code documented in monitor/errors.py; no traceback unless SLAMON_DEBUG=1. The root command line
(`slamon.cli.main`) reports every error with it; `@reported` gives a command function the same behaviour when
it is called on its own (tests, scripts)."""

from __future__ import annotations

import errno
import functools
import os
import sys
import traceback
from collections.abc import Callable

from monitor.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, SlamonError

DEBUG_ENV = "SLAMON_DEBUG"


def reported(run: Callable[..., int]) -> Callable[..., int]:
    """A command function that returns its exit code instead of raising (see `report`)."""

    @functools.wraps(run)
    def wrapper(*args, **kwargs) -> int:
        try:
            return run(*args, **kwargs)
        except SystemExit:
            raise
        except BaseException as err:  # printed as a message with its exit code
            return report(err)

    return wrapper


def report(err: BaseException) -> int:
    """Print `err` as `error: ...` (and `hint: ...`) on stderr; return its exit code."""
    if isinstance(err, BrokenPipeError):  # `slamon replay ... | head`: the reader has what it wanted
        _silence_stdout()
        return EXIT_OK
    if isinstance(err, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    debug = os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    if debug:
        traceback.print_exception(err, file=sys.stderr)
    if isinstance(err, SlamonError):
        _print_error(str(err), err.hint)
        return err.exit_code
    if isinstance(err, ConnectionError | TimeoutError):
        _print_error(f"{_what(err)}: {_os_reason(err)}", "is the service running and reachable?")
        return EXIT_UNAVAILABLE
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename is not None else ""
        if err.filename2 is not None:
            where = f"{err.filename} -> {err.filename2}: "
        _print_error(f"{where}{_os_reason(err)}")
        return EXIT_UNAVAILABLE if err.errno in (errno.ENOSPC, errno.EDQUOT) else EXIT_USAGE
    if isinstance(err, Exception):
        message = " ".join(str(err).split()) or "(no message)"
        more = "" if debug else f" (set {DEBUG_ENV}=1 for the traceback)"
        print(f"error: internal error: {type(err).__name__}: {message}{more}", file=sys.stderr)
        return EXIT_INTERNAL
    raise err  # GeneratorExit and the like: not ours to swallow


def _print_error(message: str, hint: str | None = None) -> None:
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)


def _os_reason(err: OSError) -> str:
    return err.strerror or " ".join(str(err).split()) or type(err).__name__


def _what(err: OSError) -> str:
    return type(err).__name__.replace("Error", " error").strip().lower()


def _silence_stdout() -> None:
    """After a broken pipe, Python's final flush of stdout would fail again and print a warning."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests capture it)
        pass
