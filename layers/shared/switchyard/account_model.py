"""Accounts and their API keys, as stored (a key only as the SHA-256 hash of its secret)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    created_at: int  # epoch seconds

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Account:
        return cls(item["account_id"], item.get("name", ""), int(item.get("created_at", 0)))

    def to_item(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "name": self.name, "created_at": self.created_at}


@dataclass(frozen=True)
class ApiKeyInfo:
    """A key as its owner may see it: everything but the secret (and its hash)."""

    key_id: str
    account_id: str
    name: str
    created_at: int
    revoked_at: int | None
    last_used_ms: int | None = None  # recorded by authentication, to within KEY_USE_RESOLUTION_MS

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ApiKeyInfo:
        revoked = item.get("revoked_at")
        last_used = item.get("last_used_ms")
        return cls(
            key_id=item["key_id"],
            account_id=item["account_id"],
            name=item.get("name", ""),
            created_at=int(item.get("created_at", 0)),
            revoked_at=int(revoked) if revoked else None,
            last_used_ms=int(last_used) if last_used else None,
        )

    def to_item(self, key_hash: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "key_hash": key_hash,
            "key_id": self.key_id,
            "account_id": self.account_id,
            "name": self.name,
            "created_at": self.created_at,
        }
        if self.revoked_at is not None:
            item["revoked_at"] = self.revoked_at
        return item
