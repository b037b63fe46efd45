"""Harmonic embeddings (FaceNet, appendix): does a v2 trained `--compatible-with` v1 match v1's gallery, and at what
cost to v2 alone?

Each setup trains, with `tinyface train`, a short v1, an independent stronger v2 (longer, or another network), and
from that v2 two continuations the same way: one `--compatible-with v1` (the harmonic v2: FaceNet's schedule, its
embedding layer re-initialised and trained alone for the first epoch, then the whole network), one without (the
control). Each v2 is then measured against v1 on the same test pairs (`tinyface validate V2 --against V1`):

    old/old, new/new, mixed    10-fold accuracy (mixed: one image of each pair by each version, both orders)
    G                          (mixed - old/old) / (new/new - old/old)
    rank-1, DIR@FAR            1:K on the test people: one image per person enrolled (gallery of the row's first
                               version) and probed by the second; open set with half the people strangers

The goals (the issue's): new/new >= old/old + 0.02 and mixed >= old/old for the harmonic v2; mixed <= 0.60 for a
v2 trained without --compatible-with; the cost of compatibility is new/new of the harmonic v2 minus the control's.
Runs already trained (a metrics.json in their folder) are read back. Trainings are budgeted by steps; the minutes
column is each run's own wall-clock (run.json), on a machine that was shared. Usage:

    python benchmarks/harmonic.py [--data DATA] [--out runs/harmonic] [--only lfw lfw-on-olivetti olivetti ...]

lfw-on-olivetti measures the lfw setup's runs again, on the Olivetti people 30-39 that no version ever saw (as
`tinyface validate V2 --against V1 --dataset olivetti --data DATA`): compatibility learnt on LFW's thousands of
people, tested on another camera's faces.

DATA holds olivettifaces.mat and lfw/ (default $TINYFACE_DATA). Prints one markdown table per setup.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tinyface.training.compatibility import measure_compatibility
from tinyface.training.split import Split, load_split

LFW = ["--dataset", "lfw-view1", "--data", "{data}/lfw"]  # LFW's default recipe: lfw CNN, grey 48 px, semi-hard
OLIVETTI = ["--dataset", "olivetti", "--data", "{data}"]
SCRATCH_64 = ["--init", "none", "--model", "reference", "--image-size", "64"]  # Olivetti's from-scratch benchmark

# setup -> runs in training order: name -> flags of `tinyface train` ({out} and {data} filled in)
SETUPS: dict[str, dict[str, list[str]]] = {
    "lfw": {
        "v1": [*LFW, "--steps", "600"],
        "v2-independent": [*LFW, "--steps", "1200", "--seed", "1"],
        "v2-harmonic": [*LFW, "--steps", "600", "--seed", "2", "--init", "{out}/v2-independent",
                        "--compatible-with", "{out}/v1"],
        "v2-control": [*LFW, "--steps", "600", "--seed", "2", "--init", "{out}/v2-independent"],
    },
    # v1 a small network from scratch on 64 px; v2 the default recipe (the bundled lfw CNN fine-tuned, 48 px):
    # another width, depth and input size
    "olivetti": {
        "v1": [*OLIVETTI, *SCRATCH_64, "--steps", "150"],
        "v2-independent": [*OLIVETTI, "--steps", "300", "--seed", "1"],
        "v2-harmonic": [*OLIVETTI, "--steps", "300", "--seed", "2", "--lr", "1e-3", "--init", "{out}/v2-independent",
                        "--compatible-with", "{out}/v1"],
        "v2-control": [*OLIVETTI, "--steps", "300", "--seed", "2", "--lr", "1e-3", "--init",
                       "{out}/v2-independent"],
        # FaceNet's first stage only: the re-initialised embedding layer on v2-independent's features, 300 steps
        "v2-harmonic-embedding": [*OLIVETTI, "--steps", "300", "--seed", "2", "--lr", "1e-3", "--init",
                                  "{out}/v2-independent", "--compatible-with", "{out}/v1", "--embedding-steps", "300"],
    },
    # softmax versions: v2 adds BCT's influence loss (v1's frozen classifier on v2's embedding) instead
    "olivetti-softmax": {
        "v1": [*OLIVETTI, *SCRATCH_64, "--loss", "softmax", "--steps", "150"],
        "v2-harmonic": [*OLIVETTI, "--loss", "softmax", "--steps", "300", "--seed", "1", "--lr", "1e-3",
                        "--compatible-with", "{out}/v1"],
        "v2-control": [*OLIVETTI, "--loss", "softmax", "--steps", "300", "--seed", "1", "--lr", "1e-3"],
    },
}


# setups whose runs are measured again on another dataset's test people: name -> (setup, dataset)
TRANSFERS = {"lfw-on-olivetti": ("lfw", "olivetti")}


def train(flags: list[str], folder: Path, out: Path, data: str) -> None:
    """`tinyface train` into `folder`, unless it already holds a finished run."""
    if (folder / "metrics.json").is_file():
        return
    filled = [f.format(out=out, data=data) for f in flags]
    command = [sys.executable, "-m", "tinyface.cli", "train", *filled, "--out", str(folder), "--no-progress",
               "--no-figures"]
    print("$", shlex.join(command[1:]).replace("-m tinyface.cli", "tinyface"), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def minutes(folder: Path) -> tuple[float, int]:
    """(wall-clock minutes of the training, steps) from its run.json."""
    record = json.loads((folder / "run.json").read_text())
    return record["wall_time"] / 60, record["step"]


def table(setup: str, out: Path, split: Split | None = None, title: str | None = None) -> str:
    """The markdown table of one setup: each v2 against v1 (on the runs' own test pairs, or `split`'s), and the
    goals."""
    v1 = out / "v1"
    lines = [f"\n### {title or setup}\n",
             "| v2 | declared | old/old | new/new | mixed | G | rank-1 old/old, new/new, mixed | "
             "DIR@FAR=0.1 old/old, new/new, mixed | v2 minutes (steps) |", "|---|---|---|---|---|---|---|---|---|"]
    reports = {}
    for name in SETUPS[setup]:
        if name == "v1":
            continue
        report = reports[name] = measure_compatibility(out / name, v1, split)[0]
        rank1 = ", ".join(_number(report[row]["rank1"]) for row in ("old", "new", "mixed"))
        dir_ = ", ".join(_number((report[row]["open_set"] or {}).get("FAR<=0.1")) for row in ("old", "new", "mixed"))
        spent, steps = minutes(out / name)
        lines.append(f"| {name} | {'yes' if report['declared'] else 'no'} | {_accuracy(report['old'])} | "
                     f"{_accuracy(report['new'])} | {_accuracy(report['mixed'])} | {_number(report['gain'], 2)} | "
                     f"{rank1} | {dir_} | {spent:.1f} ({steps}) |")
    spent, steps = minutes(v1)
    lines.append(f"\nv1: {spent:.1f} minutes ({steps} steps). Goals:")
    control = reports["v2-control"]["new"]["accuracy"]
    for name, report in reports.items():
        old, new, mixed = (report[row]["accuracy"] for row in ("old", "new", "mixed"))
        if report["declared"]:
            lines.append(f"- {name}: new/new >= old/old + 0.02: {new:.3f} vs {old + 0.02:.3f}: "
                         f"{_met(new >= old + 0.02)}; mixed >= old/old: {mixed:.3f} vs {old:.3f}: "
                         f"{_met(mixed >= old)}; cost of compatibility, new/new minus v2-control's: "
                         f"{new - control:+.3f}")
        else:
            lines.append(f"- control {name}, mixed <= 0.60: {mixed:.3f}: {_met(mixed <= 0.60)}")
    return "\n".join(lines)


def _accuracy(row: dict) -> str:
    return f"{row['accuracy']:.3f} +- {row['accuracy_std']:.3f}"


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("TINYFACE_DATA"),
                        help="folder holding olivettifaces.mat and lfw/ (default $TINYFACE_DATA)")
    parser.add_argument("--out", default="runs/harmonic")
    parser.add_argument("--only", nargs="+", choices=[*SETUPS, *TRANSFERS],
                        help="the setups to run (default: all)")
    args = parser.parse_args()
    if not args.data:
        parser.error("give --data DATA (or set TINYFACE_DATA): the folder holding olivettifaces.mat and lfw/")
    tables = []
    for name in args.only or [*SETUPS, *TRANSFERS]:
        setup, dataset = TRANSFERS.get(name, (name, None))
        out = Path(args.out) / setup
        for run, flags in SETUPS[setup].items():
            train(flags, out / run, out, args.data)
        split = None
        if dataset is not None:  # every test pair, from people no version trained on
            split = load_split(dataset, args.data, validation_people=0)
            split.fold = None
        tables.append(table(setup, out, split, title=name))
        print(tables[-1], flush=True)


if __name__ == "__main__":
    main()
