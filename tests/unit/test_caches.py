"""One registry forgets every process-wide cache; the package has no cache outside it."""

from __future__ import annotations

import re
from pathlib import Path

from switchyard import caches

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "shared" / "switchyard"


def test_given_a_cached_factory_then_it_builds_once_until_reset_all():
    built = []

    @caches.cached
    def factory() -> object:
        built.append(object())
        return built[-1]

    first = factory()
    assert factory() is first
    caches.reset_all()
    assert factory() is not first
    assert len(built) == 2


def test_given_a_registered_reset_then_reset_all_calls_it():
    calls = []
    caches.on_reset(lambda: calls.append("reset"))
    caches.reset_all()
    assert calls == ["reset"]


def test_every_cache_of_the_package_is_registered():
    # An lru_cache (or functools.cache) declared directly would survive reset_all(): tests would see
    # services built for a previous environment.
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "caches.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\b(lru_cache|functools\.cache|from functools import .*\bcache\b)", line)
    ]
    assert offenders == [], "use switchyard.caches.cached: " + ", ".join(offenders)
