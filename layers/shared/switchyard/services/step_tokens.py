"""A workflow step's task token, answered when the step's job ends (a job-end subscriber).

An inference step's job carries the task token of the state machine's RunJob state; its end (whoever
ended it) answers that token with the job's outcome, which wakes the step's iteration to `record` it.
"""

from __future__ import annotations

from switchyard.adapters.stepfunctions import StepFunctions
from switchyard.job_model import Job, JobStatus
from switchyard.workflows.task_errors import JOB_CANCELED, JOB_FAILED


def is_workflow_step(job: Job) -> bool:
    """The job is a workflow step's: it was created with the task token its end answers (a retried
    state hands over a new token, never a first one)."""
    return job.task_token is not None


def answer_step_token(job: Job, token: str | None = None, sfn: StepFunctions | None = None) -> None:
    """Answer a step job's task token (its own, or `token`) with the job's outcome; jobs that are not
    steps are ignored. A token answered already (or expired) is fine. Any other failure to answer
    raises, so that the job-end hook leaves the end unannounced and the sweeper answers again: a step
    never waits for its state's timeout because one SendTask call failed."""
    token = token or job.task_token
    if not token:
        return
    sfn = sfn or StepFunctions()
    if job.status == JobStatus.PROCESSED:
        sfn.succeed(token, {"job_id": job.job_id, "status": job.status.value})
    elif job.status == JobStatus.FAILED:
        sfn.fail(token, JOB_FAILED, f"{job.error_type}: {job.error_message}")
    elif job.status == JobStatus.CANCELED:
        sfn.fail(token, JOB_CANCELED, "the step's job was canceled")
