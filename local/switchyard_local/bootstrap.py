"""First-run data for the local stack: an account named "local" and an API key to call it with."""

from __future__ import annotations

from dataclasses import dataclass

LOCAL_ACCOUNT_NAME = "local"


@dataclass(frozen=True)
class BootstrapCredentials:
    account_id: str
    api_key: str
    key_id: str


def bootstrap_account() -> BootstrapCredentials:
    """Reuse the "local" account if the tables already hold one; issue a fresh key either way.

    Keys are stored only as hashes, so an existing key can never be shown again: a new one is issued.
    """
    # Imported here: the handler environment (table names, endpoint) must be in place first.
    from switchyard import caches
    from switchyard.services.accounts import get_accounts_service

    caches.reset_all()
    service = get_accounts_service()
    existing = next((a for a in service.list_accounts() if a.name == LOCAL_ACCOUNT_NAME), None)
    account = existing or service.create_account(LOCAL_ACCOUNT_NAME)
    key = service.create_api_key(account.account_id, "local")
    return BootstrapCredentials(account_id=account.account_id, api_key=key.secret, key_id=key.key_id)
