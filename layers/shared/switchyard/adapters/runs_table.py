"""DynamoDB storage of workflow runs: one run item and one item per step, under the run's id, and every
change of either as a named, conditional transition.

Keys: `run_id` (partition) and `sk`: "run" for the run, "step#<step id>" for each step. Only run items
carry `account_id`, so the `by_account` index (account_id, run_id) lists runs, never steps; run ids
sort by creation time, so that index is newest-first when read backwards.

Each transition names the state it starts from and returns the record after the write, or None when the
item was not in that state (the state machine, a cancel or a gate decision moved it first). No update
ever creates an item: every condition also requires the item to exist.

A transition that decides something the state machine must hear (a token's answer, a recorded step's
dependents to wake or skip, a canceled run's steps to cancel) writes what it owes in the same write,
and marks the item `redrive` (sparse index `redrive_due`, by `redrive_since_ms`); `settle` removes the
mark once nothing is owed. The sweeper finds what stays marked (services/workflow_followups.py). Expressions are plain strings,
not boto3's Key()/Attr() builder: the resource's condition builder keeps placeholder counters on the
shared client, so two threads building conditions at once could swap each other's placeholders.
"""

from __future__ import annotations

import zlib
from typing import Any

from botocore.exceptions import ClientError

from switchyard.adapters import aws
from switchyard.adapters.dynamo_updates import is_condition_failure, update_arguments
from switchyard.caches import cached
from switchyard.clock import now_ms
from switchyard.retention import is_expired
from switchyard.settings import get_settings
from switchyard.workflows.model import RunStatus, StepStatus
from switchyard.workflows.records import Run, Step, TokenAnswer

ACCOUNT_INDEX = "by_account"
RUN_SK = "run"
STEP_PREFIX = "step#"
REDRIVE_INDEX = "redrive_due"
REDRIVE = "redrive"  # the mark (and the index's key): a shard, so marks spread over partitions
REDRIVE_SHARDS = 4
# Nothing is owed: no follow-up, no run cancel, no token answer decided and not sent.
_SETTLED = (
    "attribute_not_exists(followups_due) AND attribute_not_exists(cancel_due)"
    " AND (attribute_not_exists(wake_answer) OR attribute_exists(wake_answer.answered_ms))"
    " AND (attribute_not_exists(gate_answer) OR attribute_exists(gate_answer.answered_ms))"
)


def step_key(run_id: str, step_id: str) -> dict[str, str]:
    return {"run_id": run_id, "sk": f"{STEP_PREFIX}{step_id}"}


def run_key(run_id: str) -> dict[str, str]:
    return {"run_id": run_id, "sk": RUN_SK}


def _owed(run_id: str) -> dict[str, Any]:
    """The attributes that put an item in the redrive index (set by every write that owes something)."""
    return {REDRIVE: f"due#{zlib.crc32(run_id.encode()) % REDRIVE_SHARDS}", "redrive_since_ms": now_ms()}


class RunsTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._table = aws.table(table_name)

    # -- reads
    def get_run(self, run_id: str) -> Run | None:
        item = self._table.get_item(Key=run_key(run_id), ConsistentRead=True).get("Item")
        return Run.from_item(item) if item and not is_expired(item) else None

    def get_step(self, run_id: str, step_id: str) -> Step | None:
        item = self._table.get_item(Key=step_key(run_id, step_id), ConsistentRead=True).get("Item")
        return Step.from_item(item) if item else None

    def get_steps(self, run_id: str) -> list[Step]:
        """Every step of the run, in the spec's (topological) order."""
        pages = aws.item_pages(
            self._table.query,
            KeyConditionExpression="run_id = :run AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":run": run_id, ":prefix": STEP_PREFIX},
            ConsistentRead=True,
        )
        return sorted((Step.from_item(item) for page in pages for item in page), key=lambda s: s.index)

    def count_waiting_gates(self) -> int:
        """Gate steps of every run waiting for approve/reject (the sweeper's census). A filtered scan: it
        reads the whole table, which is why the sweeper counts only every few sweeps."""
        return aws.item_count(
            self._table.scan,
            FilterExpression="#status = :waiting AND attribute_exists(gate_token)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":waiting": StepStatus.WAITING.value},
        )

    def list_for_account(self, account_id: str, *, limit: int, after: str | None) -> tuple[list[Run], bool]:
        """Newest first; (runs, has_more). `after` is the last run id of the previous page."""
        condition = "account_id = :account"
        values: dict[str, Any] = {":account": account_id}
        if after:
            condition += " AND run_id < :after"
            values[":after"] = after
        kwargs: dict[str, Any] = {
            "IndexName": ACCOUNT_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        runs: list[Run] = []
        for page in aws.item_pages(self._table.query, **kwargs):
            runs.extend(Run.from_item(item) for item in page if not is_expired(item))
            if len(runs) > limit:
                break
        return runs[:limit], len(runs) > limit

    def owing(self, before_ms: int, limit: int) -> list[tuple[str, str | None]]:
        """(run id, step id or None for the run itself) of items that owe something since before
        `before_ms` (eventually consistent: read the item before acting on it)."""
        found: list[tuple[str, str | None]] = []
        for shard in range(REDRIVE_SHARDS):
            pages = aws.item_pages(
                self._table.query,
                IndexName=REDRIVE_INDEX,
                KeyConditionExpression="#mark = :shard AND redrive_since_ms < :before",
                ExpressionAttributeNames={"#mark": REDRIVE},
                ExpressionAttributeValues={":shard": f"due#{shard}", ":before": before_ms},
            )
            for page in pages:
                for item in page:
                    sk = str(item["sk"])
                    found.append(
                        (str(item["run_id"]), sk.removeprefix(STEP_PREFIX) if sk != RUN_SK else None)
                    )
                if len(found) >= limit:
                    return found[:limit]
        return found

    # -- creating
    def create(self, run: Run, steps: list[Step]) -> None:
        """Steps first, the run last: a run that can be read always has all of its steps."""
        with self._table.batch_writer() as writer:
            for step in steps:
                writer.put_item(Item={**step.to_item(), **step_key(run.run_id, step.step_id)})
        self._table.put_item(
            Item={**run.to_item(), **run_key(run.run_id)}, ConditionExpression="attribute_not_exists(run_id)"
        )

    # -- transitions of a run
    def set_execution(self, run_id: str, execution_arn: str) -> Run | None:
        return self._run(run_id, set_values={"execution_arn": execution_arn})

    def fail_to_start(self, run_id: str, error: dict[str, Any]) -> Run | None:
        """FAILED: its state machine could not be started (so nothing else will ever move it)."""
        return self._run(
            run_id, set_values={"status": RunStatus.FAILED.value, "finished_ms": now_ms(), "error": error}
        )

    def note_problem(self, run_id: str, error: dict[str, Any]) -> Run | None:
        """A RUNNING run without an error yet says why it will not succeed (`finish` writes the last word)."""
        return self._run(
            run_id,
            set_values={"error": error},
            condition="#status = :running AND attribute_not_exists(#error)",
            values={":running": RunStatus.RUNNING.value},
            names={"#error": "error"},
        )

    def finish(self, run_id: str, status: RunStatus, error: dict[str, Any] | None) -> Run | None:
        """RUNNING -> its outcome; None if it was canceled first."""
        return self._run(
            run_id,
            set_values={
                "status": status.value,
                "finished_ms": now_ms(),
                **({"error": error} if error else {}),
            },
            remove=() if error else ("error",),
            condition="#status = :running",
            values={":running": RunStatus.RUNNING.value},
        )

    def cancel(self, run_id: str, error: dict[str, Any]) -> Run | None:
        """RUNNING -> CANCELED, owing the cancel of its steps (`cancel_due`); None if it had already ended."""
        return self._run(
            run_id,
            set_values={
                "status": RunStatus.CANCELED.value,
                "finished_ms": now_ms(),
                "error": error,
                "cancel_due": True,
                **_owed(run_id),
            },
            condition="#status = :running",
            values={":running": RunStatus.RUNNING.value},
        )

    def cancel_done(self, run_id: str) -> Run | None:
        """Every step of the canceled run is canceled (or had ended)."""
        return self._run(run_id, remove=("cancel_due",))

    # -- transitions of a step
    def start_step(self, run_id: str, step_id: str) -> Step | None:
        """PENDING with every dependency done -> RUNNING (its job is created next)."""
        return self._step(
            run_id,
            step_id,
            set_values={"status": StepStatus.RUNNING.value, "started_ms": now_ms()},
            condition="#status = :pending AND pending_count = :zero",
            values={":pending": StepStatus.PENDING.value, ":zero": 0},
        )

    def attach_job(self, run_id: str, step_id: str, job_id: str) -> Step | None:
        """A RUNNING step's job; None if the step was canceled while its job was being created."""
        return self._step(
            run_id,
            step_id,
            set_values={"job_id": job_id},
            condition="#status = :running",
            values={":running": StepStatus.RUNNING.value},
        )

    def note_step_error(self, run_id: str, step_id: str, error: dict[str, Any]) -> Step | None:
        """Why the step cannot run (its task then fails, and `record` keeps this error)."""
        return self._step(run_id, step_id, set_values={"error": error})

    def record(
        self,
        step: Step,
        outcome: StepStatus,
        error: dict[str, Any] | None,
    ) -> Step | None:
        """The step's outcome, recorded once, owing the wake-up or skip of its dependents
        (`followups_due`): None if it was recorded already or moved since `step` was read (a cancel, a
        gate decision), so the caller reads it again and decides anew."""
        values: dict[str, Any] = {
            "status": outcome.value,
            "recorded": True,
            "followups_due": True,
            **_owed(step.run_id),
        }
        if not step.finished_ms:
            values["finished_ms"] = now_ms()
        if error:
            values["error"] = error
        return self._step(
            step.run_id,
            step.step_id,
            set_values=values,
            condition="attribute_not_exists(recorded) AND #status = :seen",
            values={":seen": step.status.value},
        )

    def wake_dependent(
        self, run_id: str, step_id: str, dependency: str, answer: TokenAnswer
    ) -> tuple[Step | None, bool]:
        """`dependency` of a PENDING step succeeded: its pending count drops by one, once per dependency
        (`done_deps` remembers it, so a retried wake-up counts nothing twice). Returns the step after the
        write and whether this was its last dependency; (None, False) if it was counted already or the
        step is not pending.

        The last dependency's write also owes the step's wake token `answer`. The exactly-once wake-up
        rests on this write and the state machine's park: a parking step stores its token on its own item
        only while `pending_count > 0` (ParkUntilReady's condition), and this decrement returns the item as
        it is after the write, token included. Both are single-item atomic writes, so a token parked
        before the count reached 0 is on the item the last write returns, and a park that comes later
        fails its condition and reads the step instead (ReadStep).
        """
        counted = "#status = :pending AND NOT contains(done_deps, :dep)"
        common: dict[str, Any] = {":pending": StepStatus.PENDING.value, ":dep": dependency, ":one": 1}
        count_down: dict[str, Any] = {"pending_count": -1, "done_deps": {dependency}}
        for _ in range(10):  # another dependency may count down between the two writes: look again
            last = self._step(
                run_id,
                step_id,
                add=count_down,
                set_values={"wake_answer": answer.to_item(), **_owed(run_id)},
                condition=f"{counted} AND pending_count = :one",
                values=common,
            )
            if last is not None:
                return last, True
            earlier = self._step(
                run_id,
                step_id,
                add=count_down,
                condition=f"{counted} AND pending_count > :one",
                values=common,
            )
            if earlier is not None:
                return earlier, False
            current = self.get_step(run_id, step_id)
            if (
                current is None
                or current.status != StepStatus.PENDING
                or dependency in current.done_deps
                or current.pending_count < 1
            ):
                return None, False
        raise RuntimeError(f"step {step_id} of run {run_id} kept changing while {dependency} woke it")

    def skip(self, run_id: str, step_id: str, reason: dict[str, Any], answer: TokenAnswer) -> Step | None:
        """PENDING -> SKIPPED (recorded: nothing is left to decide), owing the skip of its own dependents
        and its wake token `answer`; None if it was skipped through another path, or canceled."""
        return self._step(
            run_id,
            step_id,
            set_values={
                "status": StepStatus.SKIPPED.value,
                "recorded": True,
                "finished_ms": now_ms(),
                "error": reason,
                "followups_due": True,
                "wake_answer": answer.to_item(),
                **_owed(run_id),
            },
            condition="#status = :pending",
            values={":pending": StepStatus.PENDING.value},
        )

    def followups_done(self, step: Step) -> Step | None:
        """Every dependent of the recorded step is woken or skipped."""
        return self._step(step.run_id, step.step_id, remove=("followups_due",))

    def answered(self, step: Step, slot: str) -> Step | None:
        """The answer decided for the step's `slot` token has been sent (or there was no token to send it
        to); None if the step has no answer there."""
        key = step_key(step.run_id, step.step_id)
        names = {"#answer": f"{slot}_answer", "#at": "answered_ms"}
        try:
            item = self._table.update_item(
                Key=key,
                UpdateExpression="SET #answer.#at = :now",
                ConditionExpression="attribute_exists(run_id) AND attribute_exists(#answer)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":now": now_ms()},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        return Step.from_item(item)

    def settle(self, run_id: str, step_id: str | None) -> bool:
        """Take the item out of the redrive index if it owes nothing any more; False if it still does."""
        key = step_key(run_id, step_id) if step_id is not None else run_key(run_id)
        return self._update(key, remove=(REDRIVE, "redrive_since_ms"), condition=_SETTLED) is not None

    def skip_unfinished(self, step: Step, error: dict[str, Any]) -> Step | None:
        """A step still active when the run's state machine ended -> SKIPPED, if it has not moved."""
        return self._step(
            step.run_id,
            step.step_id,
            set_values={"status": StepStatus.SKIPPED.value, "finished_ms": now_ms(), "error": error},
            condition="#status = :seen",
            values={":seen": step.status.value},
        )

    def cancel_step(
        self, step: Step, error: dict[str, Any], answer: tuple[str, TokenAnswer] | None = None
    ) -> Step | None:
        """-> CANCELED (the run was canceled), if the step has not moved since it was read; `answer`
        (slot, answer) is what its parked or waiting token is owed."""
        values: dict[str, Any] = {
            "status": StepStatus.CANCELED.value,
            "finished_ms": now_ms(),
            "error": error,
        }
        if answer is not None:
            slot, owed = answer
            values.update({f"{slot}_answer": owed.to_item(), **_owed(step.run_id)})
        return self._step(
            step.run_id,
            step.step_id,
            set_values=values,
            condition="#status = :seen",
            values={":seen": step.status.value},
        )

    def park_gate(self, run_id: str, step_id: str, token: str, waiting_since: str) -> Step | None:
        """A PENDING gate whose dependencies are done -> WAITING for a decision, its task token stored;
        None if it moved (skipped, canceled)."""
        return self._step(
            run_id,
            step_id,
            set_values={
                "gate_token": token,
                "status": StepStatus.WAITING.value,
                "waiting_since": waiting_since,
            },
            condition="#status = :pending",
            values={":pending": StepStatus.PENDING.value},
        )

    def renew_gate_token(self, run_id: str, step_id: str, token: str) -> Step | None:
        """A WAITING gate's task was retried with a new token: the decision answers that one; None if the
        gate is no longer waiting."""
        return self._step(
            run_id,
            step_id,
            set_values={"gate_token": token},
            condition="#status = :waiting",
            values={":waiting": StepStatus.WAITING.value},
        )

    def resolve_gate(
        self,
        run_id: str,
        step_id: str,
        *,
        approve: bool,
        by: str,
        comment: str | None,
        answer: TokenAnswer,
    ) -> Step | None:
        """A WAITING gate (its token stored) -> SUCCEEDED (approved) or REJECTED, with the decision and
        the answer its token is owed; None if it is not waiting (not yet, decided already, timed out,
        canceled)."""
        now = now_ms()
        decision = "approved" if approve else "rejected"
        return self._step(
            run_id,
            step_id,
            set_values={
                "status": (StepStatus.SUCCEEDED if approve else StepStatus.REJECTED).value,
                "finished_ms": now,
                "resolution": {"decision": decision, "by": by, "at_ms": now, "comment": comment},
                "gate_answer": answer.to_item(),
                **_owed(run_id),
            },
            condition="#status = :waiting AND attribute_exists(gate_token)",
            values={":waiting": StepStatus.WAITING.value},
        )

    # -- the one conditional write every transition is made of
    def _run(self, run_id: str, **update: Any) -> Run | None:
        item = self._update(run_key(run_id), **update)
        return Run.from_item(item) if item is not None else None

    def _step(self, run_id: str, step_id: str, **update: Any) -> Step | None:
        item = self._update(step_key(run_id, step_id), **update)
        return Step.from_item(item) if item is not None else None

    def _update(
        self,
        key: dict[str, str],
        *,
        set_values: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        add: dict[str, Any] | None = None,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        guard = "attribute_exists(run_id)" + (f" AND ({condition})" if condition else "")
        kwargs = update_arguments(
            set_values=set_values,
            remove=remove,
            add=add,
            condition=guard,
            condition_values=values,
            names=names,
        )
        kwargs["Key"] = key
        try:
            return self._table.update_item(**kwargs)["Attributes"]
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise


@cached
def get_runs_table() -> RunsTable:
    return RunsTable(get_settings().runs_table)
