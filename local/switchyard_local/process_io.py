"""Standard streams of the local stack's processes, which parents read one ready line from."""

from __future__ import annotations

import os
import sys
from typing import TextIO


def claim_stdout() -> TextIO:
    """Keep the real stdout for the one ready line; everything else printed later goes to stderr.

    Handlers log (Powertools) to stdout; a parent that reads only the first line would otherwise see
    its pipe fill up and this process block.
    """
    ready_output = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return ready_output
