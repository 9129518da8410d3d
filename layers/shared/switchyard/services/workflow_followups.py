"""What a workflow decision owes the state machine, done at least once.

A decision is one conditional write of the runs table, and that same write records what it owes
(adapters/runs_table.py): a token's answer (a gate decided, a step canceled, a step woken by its last
dependency or skipped: `wake_answer`, `gate_answer`), a recorded step's dependents to wake or skip
(`followups_due`), a canceled run's steps to cancel (`cancel_due`). This module does what is owed and
then records each part done (`answered`, `followups_done`, `cancel_done`) and `settle`s the item. The
decider does it at once; if a call fails (SendTaskSuccess throttled, DynamoDB refusing a write, the
process dying) the item stays in the runs table's redrive index, and the sweeper does the rest
(`redrive`) once it is REDRIVE_AFTER_SECONDS old. A run never waits for a state's timeout because one
API call failed; a gate's decision stands whether or not its answer went out at once.

Every part may run more than once, from the decider, its retry and the sweeper at the same time:
- a wake-up counts each dependency once (`done_deps` on the dependent), and a dependent counted on an
  earlier try still gets its owed answer sent;
- a skip, a cancel and a record move only from the state they name, and a step skipped or canceled on
  an earlier try still has its owed work done;
- an answer is marked sent after it is sent; sending one twice is harmless (AWS refuses the second as
  TaskTimedOut, moto as InvalidToken or not at all; StepFunctions calls both "already answered").
A job's end answers an inference step's token through the job-end hook, which is at least once too
(switchyard/job_end.py).
"""

from __future__ import annotations

import logging

from switchyard.adapters.runs_table import RunsTable, get_runs_table
from switchyard.adapters.stepfunctions import StepFunctions
from switchyard.caches import cached
from switchyard.clock import now_ms
from switchyard.services.job_lifecycle import JobLifecycle, get_job_lifecycle
from switchyard.workflows import outcomes
from switchyard.workflows.model import ACTIVE_STEP_STATUSES, StepStatus
from switchyard.workflows.records import GATE, SLOTS, WAKE, Step, TokenAnswer
from switchyard.workflows.task_errors import CANCELED, SKIPPED

logger = logging.getLogger(__name__)

READY = {"ready": True}  # what a woken step's parked token is answered with


class WorkflowFollowups:
    def __init__(self, runs: RunsTable, sfn: StepFunctions, lifecycle: JobLifecycle):
        self.runs = runs
        self.sfn = sfn
        self.lifecycle = lifecycle

    # ---------------------------------------------------------------- a recorded step's dependents

    def propagate(self, step: Step) -> None:
        """Wake (the step succeeded) or skip, transitively (anything else), the recorded step's
        dependents, then record that done. Raises when a call fails: the state machine's retry of
        `record`, or the sweeper, does it again."""
        if step.status == StepStatus.SUCCEEDED:
            self._wake_dependents(step)
        else:
            self._skip_dependents(step)
        self.runs.followups_done(step)
        self.runs.settle(step.run_id, step.step_id)

    def _wake_dependents(self, step: Step) -> None:
        for dependent_id in step.dependents:
            answer = TokenAnswer.success(READY, now_ms())
            woken, _ = self.runs.wake_dependent(step.run_id, dependent_id, step.step_id, answer)
            if woken is None:  # counted on an earlier try (or no longer pending): send what it owes
                woken = self.runs.get_step(step.run_id, dependent_id)
            if woken is not None and woken.owes_answers:
                self.send_answers(woken)

    def _skip_dependents(self, step: Step) -> None:
        # A skipped step passes on the reason it was skipped for: every step downstream of the one that
        # did not succeed names that one.
        reason = step.error if step.status == StepStatus.SKIPPED and step.error else None
        reason = reason or outcomes.skip_reason(step, step.status)
        for dependent_id in step.dependents:
            answer = TokenAnswer.failure(SKIPPED, reason["message"], now_ms())
            skipped = self.runs.skip(step.run_id, dependent_id, reason, answer)
            if skipped is None:  # skipped on an earlier try or through another path, canceled, or ran
                skipped = self.runs.get_step(step.run_id, dependent_id)
                if skipped is None or skipped.status != StepStatus.SKIPPED:
                    continue
            if skipped.owes_answers:
                self.send_answers(skipped)
            if skipped.followups_due:
                self.propagate(skipped)

    # ---------------------------------------------------------------- token answers

    def send_answers(self, step: Step) -> None:
        """Send every answer the step owes and mark each sent; raises when a call fails."""
        for slot in SLOTS:
            answer = step.answer(slot)
            if answer is None or answer.answered:
                continue
            token = step.token(slot)
            if token:  # none: the step never parked (it reads its state instead), nothing to answer
                if answer.succeeded:
                    self.sfn.succeed(token, answer.output or {})
                else:
                    self.sfn.fail(token, answer.error or "", answer.cause)
            self.runs.answered(step, slot)
        self.runs.settle(step.run_id, step.step_id)

    def try_answers(self, step: Step) -> bool:
        """`send_answers` for a caller whose decision stands either way (a gate's approval, a cancel):
        a failure is logged and left to the sweeper."""
        try:
            self.send_answers(step)
        except Exception:  # the decision is recorded; the answer it owes is re-driven
            logger.exception(
                "could not answer the token(s) of step %s of run %s; the sweeper will",
                step.step_id,
                step.run_id,
            )
            return False
        return True

    # ---------------------------------------------------------------- a canceled run

    def cancel_steps(self, run_id: str) -> bool:
        """Cancel every unfinished step of a canceled run, downstream steps first (when an upstream step's
        cancel reaches the state machine, whose record would skip what depends on it, those are canceled
        already), and fail their parked and waiting tokens or cancel their jobs. A step that fails does
        not stop the others; True when every one is done (the run's cancel is then recorded done)."""
        done = True
        for step in reversed(self.runs.get_steps(run_id)):
            try:
                self._cancel_step(step)
            except Exception:  # the next steps still get canceled; the sweeper retries this one
                done = False
                logger.exception("could not cancel step %s of run %s; the sweeper will", step.step_id, run_id)
        if done:
            self.runs.cancel_done(run_id)
            self.runs.settle(run_id, None)
        return done

    def _cancel_step(self, step: Step) -> None:
        for _ in range(5):  # the step may move while we look: retry against its new status
            previous = step.status
            if previous not in ACTIVE_STEP_STATUSES:
                if previous == StepStatus.CANCELED:  # canceled on an earlier try: finish what it owes
                    self._finish_cancel(step, previous)
                return
            updated = self.runs.cancel_step(
                step, outcomes.run_canceled_error(), self._cancel_answer(previous)
            )
            if updated is not None:
                self._finish_cancel(updated, previous)
                return
            step = self.runs.get_step(step.run_id, step.step_id) or step

    @staticmethod
    def _cancel_answer(previous: StepStatus) -> tuple[str, TokenAnswer] | None:
        """What a canceled step's token is owed: a parked step's wake token or a waiting gate's token is
        failed, so its iteration records "canceled" and ends."""
        slot = {StepStatus.PENDING: WAKE, StepStatus.WAITING: GATE}.get(previous)
        if slot is None:
            return None
        return slot, TokenAnswer.failure(CANCELED, "the run was canceled", now_ms())

    def _finish_cancel(self, step: Step, previous: StepStatus) -> None:
        if step.owes_answers:
            self.send_answers(step)
        if step.job_id and previous in (StepStatus.RUNNING, StepStatus.CANCELED):
            # The job's end answers the step's token (a job-end subscriber); a job already ended did so.
            self.lifecycle.cancel(step.job_id)

    # ---------------------------------------------------------------- the sweeper

    def redrive(self, before_ms: int, limit: int) -> list[str]:
        """Do what items marked before `before_ms` still owe; the ones done (`run/step` or `run/run`)."""
        done = []
        for run_id, step_id in self.runs.owing(before_ms, limit):
            try:
                if step_id is None:
                    run = self.runs.get_run(run_id)
                    if run is not None and run.cancel_due and not self.cancel_steps(run_id):
                        continue
                else:
                    step = self.runs.get_step(run_id, step_id)
                    if step is None:
                        continue
                    if step.followups_due:
                        self.propagate(step)
                        step = self.runs.get_step(run_id, step_id) or step
                    if step.owes_answers:
                        self.send_answers(step)
                self.runs.settle(run_id, step_id)
                done.append(f"{run_id}/{step_id or 'run'}")
            except Exception:  # one item must not keep the sweeper from the others
                logger.exception("could not re-drive %s/%s", run_id, step_id or "run")
        return done


@cached
def get_workflow_followups() -> WorkflowFollowups:
    return WorkflowFollowups(get_runs_table(), StepFunctions(), get_job_lifecycle())
