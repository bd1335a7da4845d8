"""The ``spectra`` command: ``spectra demo``, ``spectra eigs FILE``, ``spectra trace FILE``,
``spectra density FILE``.

Every subcommand imports what it needs when it runs (torch or JAX only inside ``demo``), so
``import spectra`` stays framework-free. Bad files and options end in one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from spectra._cli._demo import add_demo
from spectra._cli._errors import CLIError, Parser, fail
from spectra._cli._matrix import add_commands, seed

__all__ = ["main"]

EPILOG = """\
examples:
  spectra demo                         the Hessian spectrum of a small network (under a minute)
  spectra eigs matrix.mtx --k 10       the 10 largest eigenvalues, with error bounds
  spectra trace matrix.npz --json      trace estimate as JSON
  spectra density matrix.mtx --plot rho.png

FILE is a Matrix Market file (.mtx, .mtx.gz) or a scipy sparse matrix saved by
scipy.sparse.save_npz (.npz); it must be square and symmetric (complex Hermitian).
Exit codes: 0 done, 2 bad input (file or option), 1 an unexpected failure (a bug: please report).
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``demo`` and the three file subcommands."""
    from spectra import __version__

    parser = Parser(
        prog="spectra",
        description="Spectra of symmetric operators: extreme eigenvalues, trace and density.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"spectra {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    commands.required = True
    add_demo(commands)
    common = Parser(add_help=False)
    common.add_argument("file", metavar="FILE", help="a .mtx or .npz sparse matrix")
    common.add_argument("--seed", type=seed, default=0, help="random start vectors / probes (0)")
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    add_commands(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (0, or 2 for bad input)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.prog = args.parser.prog
    try:
        args.run(args)
    except CLIError as error:
        return fail(args.prog, error)
    except KeyboardInterrupt:
        return fail(args.prog, CLIError("interrupted"))
    return 0
