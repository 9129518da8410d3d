"""Who hears of what, wired once per process (the composition of the lifecycle hooks).

Features that follow another's events subscribe here, explicitly, rather than by importing each other
or by registering themselves as a side effect of being imported: the jobs code never imports workflows.
"""

from __future__ import annotations

from switchyard.caches import cached
from switchyard.job_end import JobEndHook
from switchyard.services.rate_limits import release_ended_job
from switchyard.services.step_tokens import answer_step_token


@cached
def get_job_end_hook() -> JobEndHook:
    """A job's end, in this order: the workflow step whose job it was answers its task token; the job
    leaves its account's jobs in flight. (Webhooks and metrics subscribe here next.)"""
    hook = JobEndHook()
    hook.subscribe("workflow step token", answer_step_token)
    hook.subscribe("jobs in flight", release_ended_job)
    return hook
