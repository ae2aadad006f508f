"""The `tracestyle` command: one parser; each stage's module adds its own subcommands
(data: problems, generate, curate, stats, registers; students: train, rsft, eval; grid: grid, report,
quickstart). Bad input prints one line and exits 2."""

from __future__ import annotations

import argparse
import sys

from tracestyle.cli import data, grid, students
from tracestyle.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tracestyle", description="Reasoning-trace curation and trace-style ablations.")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for module in (data, students, grid):
        module.add_commands(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    import warnings

    # library deprecation chatter (transformers, torch) is not actionable for our users
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args) or 0
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
