"""Errors a user can cause: the CLI prints them as one line and exits non-zero."""


class SeqDanceError(Exception):
    """Bad input (a file, a sequence, an option) described in one line for the user."""


class InputFileError(SeqDanceError):
    """An input file is missing, unreadable, or not in the expected format."""
