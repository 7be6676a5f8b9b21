"""What every `slamon` command shares: where the contracts are, opening event files and outputs, the progress
bar, RFC 3339 instants and checked number options. Errors are `SlamonError`s with a hint; the root command line
(`slamon.cli`) prints them.

Only `monitor` is imported here: streams/ and alerts/ import these helpers, never the reverse."""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from monitor.errors import EXIT_UNAVAILABLE, SlamonError

EXAMPLE_CONTRACTS = "examples/contracts.yaml"
CONTRACTS_HINT = "pass --contracts FILE or set SLAMON_CONTRACTS"
PROGRESS_MIN_BYTES = 5_000_000  # smaller files are read in a moment: no bar


class InputError(SlamonError):
    """A file or value given on the command line that cannot be used."""


# --- contracts ---------------------------------------------------------------------------------------------


class DefaultContracts(str):
    """The default of every `--contracts` option. The root command line replaces it with `contracts_path()`
    before the command runs, so the environment is read when the command runs, not when the module loads."""

    __slots__ = ()


DEFAULT_CONTRACTS = DefaultContracts(EXAMPLE_CONTRACTS)
CONTRACTS_HELP = f"contracts YAML (default: $SLAMON_CONTRACTS, else ./{EXAMPLE_CONTRACTS} if it exists)"


def add_contracts_option(p: argparse.ArgumentParser, help: str = CONTRACTS_HELP) -> None:
    p.add_argument("--contracts", metavar="FILE", default=DEFAULT_CONTRACTS, help=help)


def contracts_path(value: str | None) -> str:
    """The contracts file to use: `value` if given on the command line, else $SLAMON_CONTRACTS, else
    ./examples/contracts.yaml if it exists; otherwise an error saying how to give one."""
    if value is not None and not isinstance(value, DefaultContracts):
        return value
    env = os.environ.get("SLAMON_CONTRACTS", "").strip()
    if env:
        if not Path(env).exists():
            raise InputError(f"SLAMON_CONTRACTS={env}: no such file", hint=CONTRACTS_HINT.replace(" or set", " or fix"))
        return env
    if Path(EXAMPLE_CONTRACTS).is_file():
        return EXAMPLE_CONTRACTS
    raise InputError(f"no contracts file: none given and there is no ./{EXAMPLE_CONTRACTS} here",
                     hint=CONTRACTS_HINT)


def load_contracts_arg(value: str | None):
    from monitor.contracts import load_contracts

    return load_contracts(contracts_path(value))


def resolve_contracts_default(args: argparse.Namespace) -> None:
    """Replace a defaulted `--contracts` of the parsed `args` by the file it stands for (see `contracts_path`)."""
    if isinstance(getattr(args, "contracts", None), DefaultContracts):
        args.contracts = contracts_path(args.contracts)


# --- files -------------------------------------------------------------------------------------------------


def cannot(action: str, path: str | os.PathLike, err: OSError, what: str = "file") -> InputError:
    """`cannot read events file x.jsonl: No such file or directory` as an InputError."""
    reason = err.strerror or str(err)
    return InputError(f"cannot {action} {what} {os.fspath(path)}: {reason}")


def open_events(path: str) -> BinaryIO:
    """The events of `path` (`-`: stdin) as a binary stream; a missing file or a directory is an InputError."""
    if path == "-":
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    if os.path.isdir(path):
        raise InputError(f"cannot read events file {path}: it is a directory", hint="give a JSON Lines file or -")
    try:
        return open(path, "rb")
    except OSError as err:
        raise cannot("read", path, err, "events file") from None


def check_readable(path: str | os.PathLike, what: str = "file") -> None:
    """Fail now, with a message, if `path` is not a readable regular file."""
    if os.path.isdir(path):
        raise InputError(f"cannot read {what} {os.fspath(path)}: it is a directory")
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise cannot("read", path, err, what) from None


@contextlib.contextmanager
def output_stream(path: str | None) -> Iterator[BinaryIO]:
    """`path` opened for writing (binary), or stdout's buffer when `path` is None or `-`."""
    if path in (None, "-"):
        try:
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # the reader has gone (`| head`): the root command line ends quietly
            raise
        except OSError as err:
            if err.filename is not None:
                raise
            raise _write_error("stdout", err) from None
        return
    if os.path.isdir(path):
        raise InputError(f"cannot write {path}: it is a directory", hint="give -o a file name")
    try:
        out = open(path, "wb")  # noqa: SIM115
    except OSError as err:
        raise cannot("write", path, err, "output file") from None
    try:
        yield out
        out.close()  # flushes: a full disk may only show now
    except OSError as err:
        if err.filename is not None:  # not a write to this file (an input that could not be read)
            raise
        raise _write_error(f"output file {path}", err) from None
    finally:
        with contextlib.suppress(OSError):
            out.close()


def _write_error(what: str, err: OSError) -> InputError:
    error = InputError(f"cannot write {what}: {err.strerror or err}")
    if err.errno in (errno.ENOSPC, errno.EDQUOT):  # a full disk: unavailable, not the user's input
        error.exit_code = EXIT_UNAVAILABLE
    return error


def progress_enabled(disabled: bool = False) -> bool:
    """A progress bar on stderr: when stderr is a terminal (or SLAMON_PROGRESS=1) and not --no-progress."""
    return not disabled and (sys.stderr.isatty() or os.environ.get("SLAMON_PROGRESS") == "1")


def with_progress(stream: BinaryIO, path: str, disabled: bool, desc: str = "replay") -> Iterator[bytes]:
    """Lines of the stream, with a byte-based progress bar on stderr for large files."""
    if not progress_enabled(disabled):
        yield from stream
        return
    size = None if path == "-" else Path(path).stat().st_size
    from tqdm import tqdm

    with tqdm(total=size, unit="B", unit_scale=True, desc=desc, file=sys.stderr,
              disable=size is not None and size < PROGRESS_MIN_BYTES) as bar:
        for line in stream:
            bar.update(len(line))
            yield line


# --- values ------------------------------------------------------------------------------------------------


def parse_instant(text: str) -> int:
    """An RFC 3339 time with an offset, as microseconds since the epoch; ValueError with a message if not."""
    from monitor.events import to_us

    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"expected an RFC 3339 time like 2026-11-30T23:59:59Z, got {text!r}") from None
    if ts.tzinfo is None:
        raise ValueError(f"the time {text!r} needs an offset, e.g. Z or +01:00")
    if not 1970 <= ts.year < 2100:
        raise ValueError(f"the time {text!r} is outside 1970-2099")
    return to_us(ts)


def instant(text: str) -> int:
    """argparse type: an RFC 3339 instant."""
    try:
        return parse_instant(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _number(kind: type, low: float | None, high: float | None, low_open: bool, what: str):
    def check(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    check.__name__ = what  # argparse names the type in some messages
    return check


positive_float = _number(float, 0, None, True, "a positive number")
non_negative_float = _number(float, 0, None, False, "a number >= 0")
share = _number(float, 0, 1, False, "a share between 0 and 1")
non_negative_int = _number(int, 0, None, False, "a whole number >= 0")
positive_int = _number(int, 0, None, True, "a whole number > 0")
