"""Labeled Faces in the Wild: the protocol files (pairs and people per fold) and where each image lives.

Huang, Ramesh, Berg, Learned-Miller, "Labeled Faces in the Wild", UMass Amherst TR 07-49, 2007. Formats
(from LFW's README):

    pairs.txt (View 2)        "10 300", then per fold 300 matched lines "name n1 n2" and 300 mismatched lines
                              "name1 n1 name2 n2"
    pairsDevTrain/Test.txt    "N", then N matched and N mismatched lines (View 1: one fold)
    people.txt (View 2)       "10", then per fold a count M and M lines "name number_of_images"
    peopleDevTrain/Test.txt   "M", then M lines "name number_of_images" (View 1: one fold)

Image n of a person is <image root>/Name/Name_000n.jpg.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, NoReturn

IMAGE_FOLDERS = ("lfw-deepfunneled", "lfw", "lfw_funneled")

LFW_FRAME = 250  # LFW's images are 250 x 250 pixels, the face in the middle


class LFWFormatError(ValueError):
    """A protocol file does not follow LFW's format."""


class Pair(NamedTuple):
    """Two LFW images (person name, 1-based image number) and the fold the pair belongs to."""

    name1: str
    index1: int
    name2: str
    index2: int
    fold: int

    @property
    def same(self) -> bool:
        return self.name1 == self.name2


def read_pairs(path: str | Path) -> list[Pair]:
    """Read pairs.txt (View 2: folds 0..9) or pairsDevTrain/Test.txt (View 1: fold 0), matched pairs first."""
    lines = _ProtocolLines(path)
    header = lines.ints(lines.next(), "a header 'folds pairs_per_class' or 'pairs_per_class'", sizes=(1, 2))
    n_folds, per_class = header if len(header) == 2 else (1, header[0])
    pairs = []
    for fold in range(n_folds):
        for same in (True, False):
            for _ in range(per_class):
                fields = lines.next().split()
                if same and len(fields) == 3:
                    name, n1, n2 = fields
                    pairs.append(Pair(name, lines.int(n1), name, lines.int(n2), fold))
                elif not same and len(fields) == 4:
                    name1, n1, name2, n2 = fields
                    pairs.append(Pair(name1, lines.int(n1), name2, lines.int(n2), fold))
                else:
                    kind = "matched 'name n1 n2'" if same else "mismatched 'name1 n1 name2 n2'"
                    lines.fail(f"expected a {kind} pair (fold {fold})")
    lines.expect_end()
    return pairs


def read_people(path: str | Path) -> list[list[str]]:
    """Read people.txt (View 2: ten folds) or peopleDevTrain/Test.txt (View 1: one fold): names per fold."""
    return [[name for name, _ in fold] for fold in read_people_counts(path)]


def read_people_counts(path: str | Path) -> list[list[tuple[str, int]]]:
    """Like read_people, with the number of images of each person: [[(name, count), ...] per fold]."""
    lines = _ProtocolLines(path)
    first = lines.ints(lines.next(), "a count", sizes=(1,))[0]
    view2 = len(lines.peek().split()) == 1  # View 2: the next line is a fold's count, not "name count"
    folds = []
    for _ in range(first if view2 else 1):
        count = lines.ints(lines.next(), "a count of people", sizes=(1,))[0] if view2 else first
        fold = []
        for _ in range(count):
            fields = lines.next().split()
            if len(fields) != 2:
                lines.fail("expected 'name number_of_images'")
            fold.append((fields[0], lines.int(fields[1])))
        folds.append(fold)
    lines.expect_end()
    return folds


def image_root(root: str | Path) -> Path:
    """The folder holding one sub-folder per person: root/lfw-deepfunneled, root/lfw, ... or root itself."""
    root = Path(root).expanduser()
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass the LFW folder (holding lfw-deepfunneled/)")
    return root


def image_path(images: str | Path, name: str, index: int) -> Path:
    """Path of image `index` (1-based) of `name` under an image root: images/Name/Name_000n.jpg."""
    return Path(images) / name / f"{name}_{index:04d}.jpg"


def pair_paths(pairs: list[Pair], root: str | Path, check: bool = True) -> list[tuple[Path, Path]]:
    """The two image files of each pair, under the LFW image root found from `root`.

    With check=True a missing file raises FileNotFoundError listing (up to ten of) the missing paths.
    """
    images = image_root(root)
    paths = [(image_path(images, p.name1, p.index1), image_path(images, p.name2, p.index2)) for p in pairs]
    if check:
        missing = sorted({str(q) for both in paths for q in both if not q.is_file()})
        if missing:
            raise FileNotFoundError(f"{len(missing)} pair images are missing under {images}: {missing[:10]}")
    return paths


def people_in_pairs(pairs: list[Pair]) -> list[str]:
    """Sorted names of everyone in `pairs` (to load just them with load_image_folder(people=...))."""
    return sorted({p.name1 for p in pairs} | {p.name2 for p in pairs})


class _ProtocolLines:
    """Non-blank lines of a protocol file, with errors that name the file and line number."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path} does not exist; pass the LFW folder's protocol file")
        text = self.path.read_text(encoding="utf-8", errors="replace")
        self.lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        self.position = 0
        self.line_number = 0

    def peek(self) -> str:
        return self.lines[self.position][1] if self.position < len(self.lines) else ""

    def next(self) -> str:
        if self.position >= len(self.lines):
            self.line_number = self.lines[-1][0] + 1 if self.lines else 1
            self.fail("unexpected end of file (the header promises more lines)")
        self.line_number, line = self.lines[self.position]
        self.position += 1
        return line

    def int(self, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            self.fail(f"expected an integer, got {text!r}")

    def ints(self, line: str, what: str, sizes: tuple[int, ...]) -> list[int]:
        fields = line.split()
        if len(fields) not in sizes:
            self.fail(f"expected {what}, got {line.strip()!r}")
        return [self.int(field) for field in fields]

    def expect_end(self) -> None:
        if self.position < len(self.lines):
            self.line_number = self.lines[self.position][0]
            self.fail("more lines than the header announces")

    def fail(self, message: str) -> NoReturn:
        raise LFWFormatError(f"{self.path}, line {self.line_number}: {message}")
