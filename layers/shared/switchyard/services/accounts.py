"""Accounts and API keys. A key is shown once at creation and stored only as its SHA-256 hash."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass

from switchyard.account_model import Account, ApiKeyInfo
from switchyard.adapters.accounts_table import (
    AccountsTable,
    ApiKeysTable,
    get_accounts_table,
    get_api_keys_table,
)
from switchyard.caches import cached
from switchyard.errors import AuthenticationFailed, Conflict, NotFound
from switchyard.ids import new_id
from switchyard.settings import Settings, get_settings
from switchyard.ttl_cache import TtlCache

logger = logging.getLogger(__name__)

KEY_PREFIX = "sy-"
# Self-service keys (POST /api/account/keys): enough for every machine and teammate, not unbounded.
MAX_ACTIVE_KEYS = 100
# "Last used" is written at most this often per key (and only when the auth cache loads the key).
KEY_USE_RESOLUTION_MS = 60_000


@dataclass(frozen=True)
class IssuedKey:
    """Returned once, at creation: `secret` is never stored or shown again."""

    key_id: str
    account_id: str
    name: str
    secret: str
    created_at: int = 0


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationFailed("Authentication credentials were not provided.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Invalid token header. Use 'Authorization: Bearer <api key>'.")
    return token.strip()


class AccountsService:
    def __init__(self, settings: Settings, accounts: AccountsTable, keys: ApiKeysTable):
        self._accounts = accounts
        self._keys = keys
        # Caches only successful lookups, so a new key works at once and a revoked one stops within the TTL.
        # Reloaded in the background in the last quarter of its life: under steady traffic no request
        # waits for the lookup.
        self._auth_cache: TtlCache[str] = TtlCache(
            settings.auth_cache_seconds,
            refresh_ahead_seconds=settings.auth_cache_seconds / 4,
            keep_warm_seconds=settings.cache_keep_warm_seconds,
        )

    # -- accounts
    def create_account(self, name: str) -> Account:
        account = Account(account_id=new_id("acct_"), name=name, created_at=int(time.time()))
        self._accounts.create(account)
        return account

    def get_account(self, account_id: str) -> Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise NotFound(f"No account '{account_id}'.")
        return account

    def list_accounts(self) -> list[Account]:
        return sorted(self._accounts.all(), key=lambda a: a.created_at)

    # -- keys
    def create_api_key(self, account_id: str, name: str = "default") -> IssuedKey:
        self.get_account(account_id)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = IssuedKey(
            key_id=new_id("key_"),
            account_id=account_id,
            name=name,
            secret=secret,
            created_at=int(time.time()),
        )
        self._keys.create(
            hash_key(secret),
            ApiKeyInfo(key.key_id, account_id, name, created_at=key.created_at, revoked_at=None),
        )
        return key

    def list_api_keys(self, account_id: str) -> list[ApiKeyInfo]:
        return self._keys.list_for_account(account_id)

    def create_own_api_key(self, account_id: str, name: str) -> IssuedKey:
        """Self-service: the caller's account gets another key, within MAX_ACTIVE_KEYS (a check, not a
        lock: two creations racing at the limit may both pass)."""
        active = sum(1 for key in self.list_api_keys(account_id) if key.active)
        if active >= MAX_ACTIVE_KEYS:
            raise Conflict(
                f"This account already has {active} active keys (at most {MAX_ACTIVE_KEYS}); revoke one first."
            )
        return self.create_api_key(account_id, name)

    def key_id_of(self, authorization: str | None) -> str | None:
        """Which of its keys a caller is using (the dashboard marks it), None if it is not a valid key."""
        key = self._keys.active_key(hash_key(bearer_token(authorization)))
        return key.key_id if key else None

    def revoke_api_key(self, account_id: str, key_id: str) -> ApiKeyInfo:
        revoked = self._keys.revoke(account_id, key_id)
        if revoked is None:
            raise NotFound(f"No key '{key_id}' in account '{account_id}'.")
        key_hash, key = revoked
        self._auth_cache.invalidate(key_hash)
        return key

    def authenticate(self, authorization: str | None) -> str:
        """The account id a bearer key belongs to, or AuthenticationFailed."""
        key_hash = hash_key(bearer_token(authorization))
        return self._auth_cache.get_or_load(key_hash, lambda: self._load_account_id(key_hash))

    def _load_account_id(self, key_hash: str) -> str:
        key = self._keys.active_key(key_hash)
        if key is None:
            raise AuthenticationFailed("Invalid token.")
        self._record_use(key_hash, key)
        return key.account_id

    def _record_use(self, key_hash: str, key: ApiKeyInfo) -> None:
        """Best effort "last used": written when the auth cache loads a key (so not on the hot path) and
        at most once per KEY_USE_RESOLUTION_MS, whatever the number of containers. A failure here never
        fails the request."""
        now_ms = int(time.time() * 1000)
        if now_ms - (key.last_used_ms or 0) < KEY_USE_RESOLUTION_MS:
            return
        try:
            self._keys.record_use(key_hash, now_ms, unless_since_ms=now_ms - KEY_USE_RESOLUTION_MS)
        except Exception as exc:  # noqa: BLE001 - throttled or unreachable: the request goes on
            logger.debug("last use of key %s not recorded: %s", key.key_id, exc)


@cached
def get_accounts_service() -> AccountsService:
    return AccountsService(get_settings(), get_accounts_table(), get_api_keys_table())
