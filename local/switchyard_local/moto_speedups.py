"""Speedups for the embedded moto, applied by `switchyard-local up` only.

- Startup: moto's Step Functions interpreter imports `moto.batch.utils` for one enum; importing that
  submodule runs `moto/batch/__init__.py`, which imports the Batch backend and with it all of EC2 (~1.2 s
  of CPU, a third of the local stack's startup). A stand-in package keeps `moto.batch.utils` importable
  and loads the real backend only when something asks for `moto.batch.batch_backends`.
- SQS per-call cost: moto asks "is this message visible / delayed?" through `unix_time_millis()`, which
  builds two datetimes per question, and checks each received message's retention period by computing
  every queue attribute (three full scans of the queue, twice). A receive of 10 from a queue 300 deep
  took ~630 ms; with the same answers computed directly it takes ~18 ms, and a send ~11 ms -> ~3 ms.
  Behaviour is unchanged: the clock is the same epoch clock, the retention rule the same comparison.
- Request routing: moto's server lists its package directory (`os.listdir` plus an `isdir` per entry)
  on every request to see whether the host names a backend; the list is fixed once moto is installed.
- DynamoDB answers: moto serialises every answer by walking botocore's output shape, and finds each
  member of each attribute value through six alias rules (with a regex-based `xform_name` per rule): a
  two-item Query answer took ~2.5 ms (0.15 ms now), the providers query that keeps the gateway's routing
  cache warm (every 1.5 s) held one of two cores in bursts of up to ~11 ms, and a streamed first token
  that met one waited for a core. An
  attribute value is a dict keyed by its type (`{"S": ...}`, `{"M": {...}}`): its members are read
  with a plain lookup instead, and serialised by moto's own code as before (same output, byte for byte).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
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

    vars(stand_in)["__getattr__"] = load_backends_on_demand  # PEP 562: looked up in the module's namespace
    sys.modules["moto.batch"] = stand_in


def speed_up_sqs() -> None:
    from moto.sqs import models

    if getattr(models, "_switchyard_fast_clock", False):
        return
    original_unix_time = models.unix_time

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else original_unix_time(dt)

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_seconds = int(self.get_queue(queue_name).message_retention_period)
        return retention_seconds + message.sent_timestamp / 1000 > time.time()

    models.unix_time = unix_time
    models.unix_time_millis = unix_time_millis
    models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
    models._switchyard_fast_clock = True


def cache_moto_module_list() -> None:
    from moto import backends

    if getattr(backends, "_switchyard_cached_modules", False):
        return
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    backends._switchyard_cached_modules = True


def speed_up_dynamodb_responses() -> None:
    from moto.core.serialize import JSONSerializer

    if getattr(JSONSerializer, "_switchyard_fast_attribute_values", False):
        return
    serialize_structure = JSONSerializer._serialize_type_structure

    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (
            shape.name != "AttributeValue"
            or not key
            or not isinstance(value, dict)
            or self.service_model.service_name != "dynamodb"
        ):
            serialize_structure(self, serialized, value, shape, key)
            return
        # What the generic path does, with `value.get` for the alias search: the aliases it tries first
        # (`StringSetAttributeValue` for `SS`, ...) are never keys of an attribute value's dict.
        wrapper: dict[str, Any] = {}
        for member_key, member_shape in shape.members.items():
            member_shape.parent = shape
            member_value = value.get(member_key)
            if member_value is not None:
                self._serialize(wrapper, member_value, member_shape, member_key)
        self._default_serialize(serialized, wrapper, shape, key)

    JSONSerializer._serialize_type_structure = _serialize_type_structure
    JSONSerializer._switchyard_fast_attribute_values = True
