"""The errors a step's task can end with, as the state machine hands them to `record` (its Catch
ResultPath), by who raises them. Spelled here only: the raisers and `outcomes` import them."""

from __future__ import annotations

JOB_FAILED = "Workflow.JobFailed"  # the step's job FAILED (services/step_tokens.py)
JOB_CANCELED = "Workflow.JobCanceled"  # the step's job was CANCELED (services/step_tokens.py)
REJECTED = "Workflow.Rejected"  # the gate's reject route
CANCELED = "Workflow.Canceled"  # the run's cancel route
SKIPPED = "Workflow.Skipped"  # record: an upstream step did not succeed
TIMEOUT = "States.Timeout"  # Step Functions: the state's TimeoutSeconds ran out


class StepBodyError(Exception):
    """`start_job` could not build the step's body from its references, or it is not a valid request.

    Lambda names a task's error after the exception's class, so the state machine hands `record` the
    error STEP_BODY_ERROR."""


STEP_BODY_ERROR = StepBodyError.__name__
