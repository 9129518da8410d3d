"""The providers table's capacity slots and the accounts and keys tables, on in-process moto."""

from __future__ import annotations

import time

from switchyard.account_model import Account, ApiKeyInfo
from switchyard.catalog import ServiceType
from switchyard.provider_model import ModelDeclaration, Provider

FAR_FUTURE = 4_000_000_000_000  # epoch ms


def _provider(max_concurrency: int = 2) -> Provider:
    return Provider(
        account_id="acct_1",
        provider_id="box-1",
        endpoint_url="http://127.0.0.1:9",
        secret="s" * 16,
        max_concurrency=max_concurrency,
        models=(ModelDeclaration(id="m", service_type=ServiceType.LLM),),
        last_seen=time.time(),
    )


def test_slots_are_counted_up_to_the_capacity_and_survive_heartbeats(aws_stack):
    from switchyard.adapters.providers_table import get_providers_table

    table = get_providers_table()
    assert not table.acquire_slot("acct_1", "box-1", "job_a.1", FAR_FUTURE)  # no such provider yet
    table.record_heartbeat(_provider(max_concurrency=2), expires_at=2_000_000_000)
    assert table.acquire_slot("acct_1", "box-1", "job_a.1", FAR_FUTURE)
    assert table.acquire_slot("acct_1", "box-1", "job_b.1", FAR_FUTURE)
    assert not table.acquire_slot("acct_1", "box-1", "job_c.1", FAR_FUTURE)  # full
    table.record_heartbeat(_provider(max_concurrency=2), expires_at=2_000_000_000)
    assert set(table.leases("acct_1", "box-1")) == {"job_a.1", "job_b.1"}
    table.release_slot("acct_1", "box-1", "job_a.1")
    table.release_slot("acct_1", "box-1", "job_a.1")  # twice is harmless
    assert set(table.leases("acct_1", "box-1")) == {"job_b.1"}
    [stored] = table.of_account("acct_1")
    assert stored.serves("m", ServiceType.LLM) and stored.max_concurrency == 2


def test_expired_leases_are_dropped_and_counted_once(aws_stack):
    from switchyard.adapters.providers_table import get_providers_table

    table = get_providers_table()
    table.record_heartbeat(_provider(), expires_at=2_000_000_000)
    table.acquire_slot("acct_1", "box-1", "dead.1", 1_000)
    table.acquire_slot("acct_1", "box-1", "alive.1", FAR_FUTURE)
    assert table.expire_leases(now_ms=2_000) == 1
    assert table.expire_leases(now_ms=2_000) == 0
    assert set(table.leases("acct_1", "box-1")) == {"alive.1"}


def test_a_key_belongs_to_its_account_until_revoked_and_a_second_revoke_keeps_the_first_time(aws_stack):
    from switchyard.adapters.accounts_table import get_accounts_table, get_api_keys_table

    accounts, keys = get_accounts_table(), get_api_keys_table()
    accounts.create(Account("acct_1", "team", 100))
    assert accounts.get("acct_1") == Account("acct_1", "team", 100)
    keys.create("hash-1", ApiKeyInfo("key_1", "acct_1", "default", 100, None))
    assert keys.account_of("hash-1") == "acct_1"
    assert keys.account_of("hash-unknown") is None
    assert keys.revoke("acct_2", "key_1") is None  # another account's key
    key_hash, revoked = keys.revoke("acct_1", "key_1")
    assert key_hash == "hash-1" and revoked.revoked_at
    assert keys.revoke("acct_1", "key_1")[1].revoked_at == revoked.revoked_at
    assert keys.account_of("hash-1") is None
    assert [k.key_id for k in keys.list_for_account("acct_1")] == ["key_1"]


def test_registrations_carry_every_provider_with_its_leases_and_first_heartbeat(aws_stack):
    from switchyard.adapters.providers_table import get_providers_table

    table = get_providers_table()
    assert table.registrations("acct_1") == []
    table.record_heartbeat(_provider(), expires_at=2_000_000_000)
    table.acquire_slot("acct_1", "box-1", "job_a.1", FAR_FUTURE)
    [registration] = table.registrations("acct_1")
    assert registration.provider.provider_id == "box-1"
    assert registration.leases == {"job_a.1": FAR_FUTURE}
    assert registration.first_seen and abs(registration.first_seen - time.time()) < 60
    assert table.registrations("acct_2") == []


def test_a_keys_last_use_is_written_once_per_window_and_never_for_a_revoked_key(aws_stack):
    from switchyard.adapters.accounts_table import get_api_keys_table

    keys = get_api_keys_table()
    keys.create("hash-1", ApiKeyInfo("key_1", "acct_1", "default", 100, None))
    assert keys.active_key("hash-1").last_used_ms is None
    assert keys.record_use("hash-1", now_ms=10_000, unless_since_ms=0)
    assert not keys.record_use("hash-1", now_ms=20_000, unless_since_ms=5_000)  # already recorded since
    assert keys.active_key("hash-1").last_used_ms == 10_000
    assert keys.record_use("hash-1", now_ms=80_000, unless_since_ms=20_000)
    assert keys.list_for_account("acct_1")[0].last_used_ms == 80_000
    assert not keys.record_use("hash-unknown", now_ms=90_000, unless_since_ms=0)
    keys.revoke("acct_1", "key_1")
    assert keys.active_key("hash-1") is None
