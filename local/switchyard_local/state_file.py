"""`.switchyard/local-stack.json`: how other tools (switchyard-admin --local, tests) find the running stack."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = Path(".switchyard") / "local-stack.json"


def write_state_file(state: dict[str, Any], path: Path = STATE_FILE) -> Path:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    # It holds an API key: readable by the owner only, and replaced atomically so readers never see half.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, path)
    return path


def remove_state_file(path: Path) -> None:
    path.unlink(missing_ok=True)
