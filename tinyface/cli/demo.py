"""`tinyface demo`: the teaching demos. `demo collapse` shows why the triplet loss needs its margin
(tinyface.teaching.collapse does the training and the figure; here are the options and what is printed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyface.data import load_olivetti
from tinyface.files import atomic_write, check_output
from tinyface.teaching.collapse import CollapseConfig, collapse_summary, plot_collapse, run_collapse


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `demo` and its demos (collapse) to `tinyface`."""
    d = commands.add_parser("demo", help="teaching demos")
    demos = d.add_subparsers(dest="demo", metavar="DEMO", required=True)
    dc = demos.add_parser("collapse", help="why the triplet loss needs its margin (Olivetti, ~1 minute)",
                          description="Train the reference CNN on Olivetti people 0-29 three times (alpha = 0, "
                          "alpha = 0.2, alpha = 0 unnormalised) and measure on people 30-39: without a margin the "
                          "embeddings collapse. Writes collapse.png and collapse.json into --out.")
    dc.add_argument("--out", metavar="DIR", default="runs/demo-collapse")
    dc.add_argument("--data", metavar="PATH", help="folder holding olivettifaces.mat")
    dc.add_argument("--fast", action="store_true", help="3 epochs of 8 steps (for tests and a quick look)")
    dc.add_argument("--force", action="store_true", help="replace collapse.png and collapse.json if --out holds them")
    dc.set_defaults(handler=_collapse)


def _collapse(args: argparse.Namespace) -> int:
    out = Path(args.out)
    for name in ("collapse.png", "collapse.json"):
        check_output(out / name, args.force)
    config = CollapseConfig(epochs=3, steps_per_epoch=8) if args.fast else CollapseConfig()
    faces = load_olivetti(args.data)
    train, held_out = faces.people(range(30)), faces.people(range(30, 40))
    print(f"training the reference CNN on Olivetti people 0-29 three times ({config.epochs} epochs of "
          f"{config.steps_per_epoch} steps each), measuring on people 30-39")
    histories = run_collapse(train, config, log=print, held_out=held_out)
    figure = atomic_write(out / "collapse.png",
                          lambda file: plot_collapse(histories, held_out.labels, file))  # a file object: PNG
    summary = collapse_summary(config, histories)
    atomic_write(out / "collapse.json", lambda file: file.write(json.dumps(summary, indent=1).encode()))
    print(f"wrote {figure} and {out / 'collapse.json'}")
    return 0
