"""The one way the command fails on bad input: a one-line message and exit code 2."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

USAGE_ERROR = 2


class CLIError(Exception):
    """Bad input (a file, an option, a missing extra): printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def fail(prog: str, error: BaseException) -> int:
    """Print ``error`` as one line naming the command, return the exit code."""
    text = " ".join(str(error).split()) or type(error).__name__
    print(f"{prog}: error: {text}", file=sys.stderr)
    return USAGE_ERROR
