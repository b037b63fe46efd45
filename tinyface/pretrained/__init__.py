"""The model that comes with tinyface: a run folder (run.json, the weights, MODEL_CARD.md) that tinyface itself
trained on LFW View 1's training people, never on View 1's test people or on the Olivetti faces.

MODEL_CARD.md gives the exact command that made it, the data, the minutes and what it measures. The commands that
take a RUN (compare, enroll, identify, cluster, classify, embed) use it when none is given, and `tinyface train`
on Olivetti starts from it. Its training people are in LFW View 2's folds: never report View 2 with it.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def pretrained_run() -> Path:
    """The folder of the bundled model, to pass wherever a run folder is expected (e.g. load_checkpoint)."""
    if not (FOLDER / "run.json").is_file():
        raise FileNotFoundError(f"this tinyface has no bundled model ({FOLDER / 'run.json'} is missing); pass a run "
                                "folder written by `tinyface train`")
    return FOLDER
