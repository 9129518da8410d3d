"""The size DynamoDB counts for an item (pure), so the one size rule measures what DynamoDB measures.

DynamoDB's limit (400 KB) and its billing (per KB written, per 4 KB read) count the item as stored: each
attribute's name in UTF-8 plus its value (strings in UTF-8, binary as bytes, numbers up to 21 bytes,
lists and maps 3 bytes plus one per element plus their elements). This errs a little on the large side
(every number counts as 21 bytes), never on the small one: a text's length in characters is not its
size (non-ASCII text is up to 4 bytes a character, and JSON's ASCII escaping up to 12).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

NUMBER_BYTES = 21  # the most a DynamoDB number can take
CONTAINER_BYTES = 3


def item_size(item: Mapping[str, Any]) -> int:
    """Bytes DynamoDB counts for `item` (a boto3 resource-shaped item: str, int, bytes, list, dict...)."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items() if value is not None)


def value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", errors="surrogatepass"))
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float | Decimal):
        return NUMBER_BYTES
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, Mapping):
        return CONTAINER_BYTES + sum(
            1 + len(str(name).encode()) + value_size(inner) for name, inner in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return CONTAINER_BYTES + sum(1 + value_size(inner) for inner in value)
    return len(str(value).encode())
