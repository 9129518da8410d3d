"""The one time format clients read, for jobs and runs alike (the seeds' `2026-06-13T12:00:00Z`)."""

from __future__ import annotations

from switchyard.clock import iso, ms_from_iso


def test_given_milliseconds_then_iso_is_whole_seconds_utc_like_the_seed():
    assert iso(1_781_352_000_999) == "2026-06-13T12:00:00Z"


def test_given_no_time_then_iso_is_none():
    assert iso(None) is None
    assert iso(0) is None


def test_given_step_functions_entered_time_then_it_reads_as_milliseconds():
    assert ms_from_iso("2026-06-13T12:00:00.250Z") == 1_781_352_000_250
    assert ms_from_iso("2026-06-13T12:00:00.250") == 1_781_352_000_250  # no zone: UTC
    assert ms_from_iso("yesterday") is None
    assert ms_from_iso(None) is None
