"""Text for the terminal. Much of what `tinyface` prints comes from files: person names are folder names, paths are
whatever a folder holds, and a file name may contain control characters (ESC [ ... sequences recolour, move the
cursor, clear the screen or retitle the window; bidirectional overrides reorder a line). Everything the command
prints goes through `printable`, so such characters are shown as escapes (\\x1b, \\u202e) and never act.
"""

from __future__ import annotations

import re
from typing import TextIO

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional embeddings, overrides and isolates
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character (see CONTROL) replaced by its Python escape, e.g. ESC by \\x1b."""
    return CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


class PrintableOutput:
    """A text stream that writes `printable(text)` to `stream`: the command's standard output."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(printable(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str):  # isatty, encoding, fileno ... of the stream
        return getattr(self.stream, name)
