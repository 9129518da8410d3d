"""Who hears of what, wired once per process (the composition of the lifecycle hooks).

Features that follow another's events subscribe here, explicitly, rather than by importing each other
or by registering themselves as a side effect of being imported: the jobs code never imports workflows.
"""

from __future__ import annotations

from switchyard.caches import cached
from switchyard.job_end import JobEndHook
from switchyard.services.job_telemetry import job_ended
from switchyard.services.rate_limits import release_ended_job
from switchyard.services.step_tokens import answer_step_token, is_workflow_step
from switchyard.services.webhook_events import announce_job_end, has_webhook


@cached
def get_job_end_hook() -> JobEndHook:
    """A job's end, in this order: its metrics and its "job ended" log line (with the account, for the
    per-account queries); the workflow step whose job it was answers its task token; the job leaves its
    account's jobs in flight; the webhook that hears of the job (or of its batch) gets its event stored and
    queued (after the release, so a receiver that submits the next job on hearing of this one's end is not
    refused by its account's max-active-jobs). The token and the webhook hear every end at least once (the
    sweeper announces again what either could not take: job_end.py); the telemetry and the release hear
    only the first announcement, so an end is never counted twice (a release lost with a crash is a drift
    the limiter corrects from the jobs table: rate_limits.py). So a plain job's end, which neither the
    token nor a webhook hears, is not kept in the outbox (job_end.py)."""
    hook = JobEndHook()
    hook.subscribe("job telemetry", job_ended, once=True)
    hook.subscribe("workflow step token", answer_step_token, hears=is_workflow_step)
    hook.subscribe("jobs in flight", release_ended_job, once=True)
    hook.subscribe("webhooks", announce_job_end, hears=has_webhook)
    return hook
