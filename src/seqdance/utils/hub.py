"""Hugging Face hub access: fail at once, in one line, when a download cannot happen."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from seqdance.errors import SeqDanceError


def require_hub(missing: str, remedy: str) -> None:
    """Raise :class:`SeqDanceError` unless the hub can be asked for a download.

    ``missing`` says what is not cached (``"'ChaoHou/SeqDance' is not in the local Hugging
    Face cache"``), ``remedy`` what the user can do instead. Checks the offline switches and
    then whether the hub's host answers, so that an offline machine fails in seconds instead
    of retrying.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("TRANSFORMERS_OFFLINE"):
        raise SeqDanceError(f"{missing} and offline mode is set; {remedy}")
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError as exc:
        raise SeqDanceError(
            f"{missing} and {host} cannot be reached ({exc.strerror or exc}); {remedy}"
        ) from None
