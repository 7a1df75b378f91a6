"""The id rule, defined once: model, checkpoint, dataset, suite and rule ids appear in URL paths, so they
may not hold white space, a slash, a backslash, ?, #, % or a control character (1 to 256 characters).
The ingest and admin request models use Ident; the backfill checks ids with is_valid_id before sending."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

MAX_ID_LENGTH = 256
_ID_CHAR = r"[^\s/\\?#%\x00-\x1f]"
ID_PATTERN = rf"^{_ID_CHAR}+$"
_ID = re.compile(rf"{_ID_CHAR}+")

Ident = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]


def is_valid_id(text: str) -> bool:
    """The rule Ident checks: 1 to MAX_ID_LENGTH characters, none of them excluded."""
    return 0 < len(text) <= MAX_ID_LENGTH and _ID.fullmatch(text) is not None
