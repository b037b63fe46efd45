"""The `tinyface` command.

    tinyface train [--dataset olivetti | lfw-view1 | lfw-view2 | folder] [--data PATH] [--seed N] [--out DIR] ...
    tinyface validate RUN [--dataset ...] [--data PATH] [--json] [--figures DIR]
    tinyface compare RUN IMAGE IMAGE [IMAGE ...] [--json]
    tinyface enroll RUN GALLERY_DIR -o gallery.npz [--append | --force]
    tinyface identify RUN gallery.npz IMAGE [IMAGE ...] [--by nearest|mean] [--json]
    tinyface cluster RUN DIR [--method chinese-whispers|dbscan] [--figure PNG] [--json]
    tinyface classify RUN --train DIR --test DIR [--k 5] [--json]
    tinyface embed RUN DIR -o embeddings.npz [--figure PNG]
    tinyface align LANDMARKS.csv -o OUT_DIR [--size 112]  |  tinyface align --detect IMAGE_DIR -o OUT_DIR
    tinyface demo collapse [--out DIR] [--data PATH] [--fast]
    tinyface cache [clear]
    tinyface --version

RUN is a run folder written by `tinyface train`: its model embeds image files with the run's own preprocessing
(run.json: image size, grey or RGB, source crop, normalisation), and its threshold tau decides "same person".
An image folder DIR holds one sub-folder of images per person (labelled) and/or loose images (unlabelled).

Each group of commands lives in its own module, its parsing beside its handler: training.py (train, validate),
face.py (compare, enroll, identify, cluster, classify, embed, align), demo.py (demo collapse) and cache.py (cache).
Each exposes `add_commands(commands)`, which adds its subparsers and registers their handlers with
`set_defaults(handler=...)`.

Errors in what the user gave (a missing dataset, a wrong path, a run folder without a checkpoint, a corrupt one)
are printed as `tinyface: error: ...` with exit status 2, without a traceback (`--debug` shows it). What is printed
passes through terminal.printable: a file or person name cannot send control sequences to the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

import tinyface
from tinyface.cli import cache, demo, face, training
from tinyface.cli.errors import USER_ERRORS
from tinyface.cli.terminal import PrintableOutput, printable


def build_parser() -> argparse.ArgumentParser:
    """The parser of `tinyface` and of every command, in the order `tinyface --help` lists them."""
    parser = argparse.ArgumentParser(prog="tinyface", description="FaceNet-style face recognition from scratch.")
    parser.add_argument("--version", action="version", version=f"tinyface {tinyface.__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (training, face, demo, cache):
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status (2 for a user error, 130 when interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with contextlib.redirect_stdout(PrintableOutput(sys.stdout)):  # names from files cannot drive the terminal
            return args.handler(args)
    except KeyboardInterrupt as interrupt:  # a handler may say what to do next (train: how to resume)
        hint = str(interrupt) or "nothing was half-written (outputs are written whole, then renamed into place)"
        print(f"\ntinyface: interrupted; {printable(hint)}", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"tinyface: error: {printable(str(error))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
