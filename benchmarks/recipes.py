"""Training recipes at equal wall-clock on LFW View 1: which loss, input and batch make the best face model.

Each row is one `tinyface train --dataset lfw-view1` command with the same --minutes budget (or two commands
sharing it: a softmax pretraining, then `--init` its run for triplet fine-tuning), trained on View 1's
training people and measured on its 1,000 test pairs (people never trained on): 10-fold accuracy without and with
test-time flipping, AUC, VAL@FAR=1e-3, and the images per second the run reached. Rows already trained (a
metrics.json in their folder) are read back, so an interrupted comparison continues where it stopped. Usage:

    python benchmarks/recipes.py --data LFW_ROOT [--minutes 5] [--out runs/recipes] [--only NAME ...]

Prints a markdown table (the one in benchmarks/README.md) with the command of every row.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

# name -> the flags given to `tinyface train --dataset lfw-view1`; the other settings are its defaults: the lfw CNN
# on grey 48 x 48 images (the central 0.4 of the frame), semi-hard with margin 0.2, 32 x 4, 1e-3 on a cosine schedule,
# and Adam without weight decay: the default when the table was measured (AdamW is now), so every row keeps it
BASE = ["--optimizer", "adam", "--weight-decay", "0"]
REFERENCE_64 = ["--model", "reference", "--image-size", "64"]  # the reference CNN on 64 px: the first rows' base
RECIPES = {
    "semi-hard, reference CNN, grey 64 px, crop 0.4, 32 x 4": REFERENCE_64,
    "batch-hard, soft margin": [*REFERENCE_64, "--loss", "batch-hard", "--margin", "soft"],
    "batch-all": [*REFERENCE_64, "--loss", "batch-all"],
    "softmax": [*REFERENCE_64, "--loss", "softmax", "-P", "64", "-K", "2"],
    "RGB instead of grey": [*REFERENCE_64, "--rgb"],
    "crop 0.48 (120 px)": [*REFERENCE_64, "--face-crop", "0.48"],
    "48 px input": ["--model", "reference"],
    "16 people x 8 images": [*REFERENCE_64, "-P", "16", "-K", "8"],
    "wider/deeper (lfw model)": ["--image-size", "64"],
    "lfw model, 48 px (the default then)": [],
    "+ 32 extra people, one image each": ["--extra-people", "32"],
    "+ 96 extra people, one image each": ["--extra-people", "96"],
    "softmax, lfw model 48 px": ["--loss", "softmax", "-P", "64", "-K", "2"],
    "softmax + center loss 0.01": ["--loss", "softmax", "-P", "64", "-K", "2", "--center-loss", "0.01"],
    "softmax + center loss 0.1": ["--loss", "softmax", "-P", "64", "-K", "2", "--center-loss", "0.1"],
    # two stages, half the budget each: the second starts from the first's weights (its classifier is dropped)
    "softmax, then semi-hard": [["--loss", "softmax", "-P", "64", "-K", "2"], []],
}


def stages(flags: list[str] | list[list[str]]) -> list[list[str]]:
    """A row's commands' flags: one list, or one per stage."""
    return flags if flags and isinstance(flags[0], list) else [flags]  # type: ignore[return-value]


def commands(name: str, flags: list[str] | list[list[str]], minutes: float, data: str, out: Path
             ) -> list[list[str]]:
    """The row's `tinyface train` commands: each stage gets an equal share of the minutes and starts from the
    run of the stage before it."""
    folder = out / name.split(" (")[0].replace(" ", "-").replace(",", "").replace("/", "-").replace("+", "plus")
    parts = stages(flags)
    folders = [folder] if len(parts) == 1 else [folder / f"stage-{k + 1}" for k in range(len(parts))]
    return [[sys.executable, "-m", "tinyface.cli", "train", "--dataset", "lfw-view1", "--data", data,
             "--minutes", f"{minutes / len(parts):g}", "--out", str(here), "--no-progress", "--no-figures", *BASE,
             *part,
             *(["--init", str(folders[k - 1])] if k else [])]
            for k, (part, here) in enumerate(zip(parts, folders, strict=True))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the LFW folder (pairs.txt, lfw-deepfunneled/ ...)")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--out", default="runs/recipes")
    parser.add_argument("--only", nargs="+", help="names (or name prefixes) of the rows to run")
    args = parser.parse_args()
    rows = []
    for name, flags in RECIPES.items():
        if args.only and not any(name.startswith(prefix) for prefix in args.only):
            continue
        histories, steps = [], []
        for cmd in commands(name, flags, args.minutes, args.data, Path(args.out)):
            metrics_file = Path(cmd[cmd.index("--out") + 1]) / "metrics.json"
            if not metrics_file.is_file():
                print("$", shlex.join(cmd[1:]).replace("-m tinyface.cli", "tinyface"), flush=True)
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            run = json.loads((metrics_file.parent / "run.json").read_text())
            histories += run["history"]
            steps.append(str(run["step"]))
        report = json.loads(metrics_file.read_text())  # the last stage's model on the test pairs
        speed = sum(r["images_per_second"] * r["seconds"] for r in histories) / sum(r["seconds"] for r in histories)
        shown = " then ".join(" ".join(part) or "(defaults)" for part in stages(flags))
        rows.append((name, report, " + ".join(steps), speed, shown))
    print(f"\n| recipe ({args.minutes:g} min each) | accuracy | + flip | AUC | VAL@FAR=1e-3 | steps | images/s | "
          "flags |")
    print("|---|---|---|---|---|---|---|---|")
    for name, report, steps, speed, flags in rows:
        m, f = report["model"], report.get("model_flip", report["model"])
        print(f"| {name} | {m['accuracy']:.3f} +- {m['accuracy_std']:.3f} | {f['accuracy']:.3f} | {m['auc']:.3f} | "
              f"{m['val_at_far']:.3f} | {steps} | {speed:.0f} | `{flags}` |")


if __name__ == "__main__":
    main()
