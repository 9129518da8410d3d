"""Identifiers: strings, sortable by creation time, unguessable."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str = "") -> str:
    # 12 hex digits of milliseconds (sorts until year 10889) + 10 random hex digits.
    return f"{prefix}{time.time_ns() // 1_000_000:012x}{secrets.token_hex(5)}"
