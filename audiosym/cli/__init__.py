"""The ``audiosym`` command: one entry point, one module per subcommand.

Each module in :data:`COMMANDS` defines ``register(subparsers)``, which adds its
parser and sets ``func(args) -> int``. Modules that need torch import it inside
``func`` only, so ``audiosym --help`` and the runtime commands work without it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

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
    from audiosym import __version__

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
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except AudiosymError as exc:
        print(f"audiosym {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `audiosym presets inspect P | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
