"""The ``audiosym`` command: one entry point, one module per subcommand.

Each module in :data:`COMMANDS` defines ``register(subparsers)``, which adds its
parser and sets ``func(args) -> int``. :func:`build_parser` imports every one of them, by its
name in :data:`COMMANDS` (the one list of the commands and their order in ``--help``), so what
a subcommand module imports at its top is imported by every command, ``--help`` included: a
subcommand that needs torch (``train``, ``export``, ``bench train``, ``eval`` of a run
directory) or the benchmarks' numba, scipy and librosa imports them inside ``func``, marked
``# lazy:``, so ``audiosym --help`` and the runtime commands stay fast and work without torch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from audiosym import __version__
from audiosym.cli._common import cli_message
from audiosym.errors import AudiosymError

COMMANDS = ("demo", "train", "eval", "export", "presets", "resynth", "live", "bench")

EPILOG = """\
`audiosym COMMAND --help` explains one command, with examples. The words you meet (preset,
timbre, latent, transfer/synth mode, latency, xrun ...) are explained in plain language, with a
first-hour walk-through, in docs/musicians.md.

examples:
  audiosym demo                                   # a melody re-timbred with the shipped presets
  audiosym presets list                           # the presets you can play, and where they live
  audiosym resynth song.wav --out out/ --preset sps-default --timbre violin --transpose 3
  audiosym live --preset sps-default --timbre flute --midi-port 0
  audiosym train sps --config tiny --out runs/sps # learn your own (needs the training extra)
  audiosym eval sps runs/sps --json               # how well it learned pitch, on unseen instruments
  audiosym export runs/sps --out my.asym          # the trained run -> one preset file
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audiosym",
        description="Learn pitch and timbre latents from note audio, export them as presets, play them live.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"audiosym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            continue  # subcommand not built yet
        module = importlib.import_module(f"{__name__}.{name}")  # by name: the COMMANDS table is the registry
        module.register(sub)
    _mark_command_parsers(sub)
    return parser


def _mark_command_parsers(sub: argparse._SubParsersAction) -> None:
    """Each (sub)command's parser rides along in its namespace: the library names keywords in its
    errors, and main() prints them as the flags of the command that was run."""
    for command_parser in sub.choices.values():
        command_parser.set_defaults(command_parser=command_parser)
        for action in command_parser._actions:  # argparse has no public accessor for its actions
            if isinstance(action, argparse._SubParsersAction):
                _mark_command_parsers(action)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except AudiosymError as exc:
        print(f"audiosym {args.command}: error: {cli_message(str(exc), getattr(args, 'command_parser', None))}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `audiosym presets inspect P | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
