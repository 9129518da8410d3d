"""The soak and chaos benchmark in a short form (benchmarks/soak_chaos.py, 300 jobs): nothing is lost, no
result is overwritten, no successful provider call goes unrecorded, and every duplicate provider call is
explained by a fault injected during the run. The full run (10,000 jobs) and its figures: README."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.soak

ROOT = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("soak_chaos", ROOT / "benchmarks" / "soak_chaos.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_chaos"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_three_hundred_jobs_through_provider_failures_kills_and_duplicate_deliveries(tmp_path):
    soak = _benchmark()

    figures = soak.run_soak(300, tmp_path, window=400, clients=4)
    soak.print_report(figures)

    assert figures["jobs_submitted"] == 300
    assert figures["jobs_lost"] == 0, figures["examples"]
    assert figures["results_overwritten"] == 0, figures["examples"]
    assert figures["succeeded_call_but_result_missing"] == 0, figures["examples"]
    assert figures["duplicates_unexplained"] == 0, figures["examples"]
    assert set(figures["jobs_by_status"]) <= {"PROCESSED", "FAILED"}
    assert set(figures["failed_by_type"]) <= {"upstream_error"}  # only attempts exhausted by the faults
    assert figures["provider_calls_not_of_a_job"] == 0
    # The faults did happen, each while there was something to lose.
    faults = figures["faults"]
    assert len(faults["dispatcher_kills"]) == 2
    assert all(kill["records_in_flight"] > 0 for kill in faults["dispatcher_kills"])
    assert len(faults["provider_kills"]) == 1
    assert faults["duplicate_sqs_deliveries_injected"] > 0
    assert figures["injected_500s"] > 0
    assert figures["results_checked_while_running"] > 0
