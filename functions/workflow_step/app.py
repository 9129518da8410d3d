"""WorkflowStepFunction: the workflow state machine's Lambda tasks (statemachines/workflow.asl.json).

`action` says which: start_job (create an inference step's job carrying its task token), record (a
step's outcome; wakes or skips its dependents), finish (the run's outcome). An exception fails the task,
which the state machine catches and records.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from switchyard.logs import logged_invocation, logger
from switchyard.services.workflow_runner import get_workflow_runner


# A run's tasks log under the run's id; the job a task starts logs under its own (switchyard/logs.py).
@logged_invocation(correlation_id_path="run_id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    answer = get_workflow_runner().handle(event)
    logger.info(
        "workflow task",
        extra={"run_id": event.get("run_id"), "step_id": event.get("step_id"), "action": event.get("action")},
    )
    return answer
