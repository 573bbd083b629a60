"""Errors a user can cause: the CLI prints them as one line and exits non-zero."""

import re


class SeqDanceError(Exception):
    """Bad input (a file, a sequence, an option) described in one line for the user."""

    def __str__(self) -> str:  # one line, whatever text from a library went into it
        return " ".join(super().__str__().split())


class InputFileError(SeqDanceError):
    """An input file is missing, unreadable, or not in the expected format."""


# MDTraj's wording when a trajectory's frames do not fit the topology's atom count
_XYZ_SHAPE = re.compile(r"xyz must be shape \(Any, (\d+), 3\)\. You supplied +\(\d+, (\d+), 3\)")


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, with library wording translated for users."""
    if isinstance(exc, ImportError):  # MDTraj's missing-module banner is many lines long
        return f"this file format needs the Python package {exc.name or 'that MDTraj names'}"
    text = " ".join(str(exc).split())
    shapes = _XYZ_SHAPE.search(text)
    if shapes:
        return f"its frames have {shapes[2]} atoms, the topology has {shapes[1]}"
    return text or type(exc).__name__
