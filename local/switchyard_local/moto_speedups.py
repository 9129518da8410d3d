"""Startup shortcuts for the embedded moto, applied by `switchyard-local up` only.

moto's Step Functions interpreter imports `moto.batch.utils` for one enum; importing that submodule
runs `moto/batch/__init__.py`, which imports the Batch backend and with it all of EC2 (~1.2 s of CPU,
a third of the local stack's startup). A stand-in package keeps `moto.batch.utils` importable and
loads the real backend only when something asks for `moto.batch.batch_backends`.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def defer_moto_batch_import() -> None:
    if "moto.batch" in sys.modules:
        return
    moto_spec = importlib.util.find_spec("moto")
    if moto_spec is None or moto_spec.origin is None:
        return
    batch_dir = Path(moto_spec.origin).parent / "batch"
    if not (batch_dir / "models.py").is_file() or not (batch_dir / "utils.py").is_file():
        log.debug("moto.batch layout changed; importing it the usual way")
        return

    stand_in = types.ModuleType("moto.batch")
    stand_in.__path__ = [str(batch_dir)]
    stand_in.__package__ = "moto.batch"

    def load_backends_on_demand(name: str) -> Any:
        if name == "batch_backends":  # what moto.backends looks up when a Batch API call arrives
            from moto.batch.models import batch_backends

            return batch_backends
        raise AttributeError(name)

    stand_in.__getattr__ = load_backends_on_demand  # type: ignore[method-assign]
    sys.modules["moto.batch"] = stand_in
