"""The argparse classes of every `slamon` parser: option defaults shown in the help, line breaks of descriptions
and epilogs kept. Subparsers inherit the class, so every command's help looks the same."""

from __future__ import annotations

import argparse
import textwrap


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default (unless its help already says it, or there is none to show) and keeps the
    line breaks of descriptions and epilogs (each line is wrapped on its own)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or default is None or isinstance(default, bool) or default == [] or \
                default is argparse.SUPPRESS:
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        return f"{text} (default: %(default)s)"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            if not line.strip() or line.startswith("  "):
                lines.append(indent + line)
            else:
                lines.append(textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent))
        return "\n".join(lines)


class Parser(argparse.ArgumentParser):
    """The parser of `slamon` and of every subcommand (subparsers inherit the class)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
