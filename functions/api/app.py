"""ApiFunction: every /v1 and /api/inference route (HTTP API payload v2).

The routes live in the shared layer (`switchyard.api`) because the StreamFunction's front serves the
same resolver; this file is the Lambda entry point. Where each route's behaviour is (route module ->
the service it calls, both under layers/shared/switchyard/):

  every /v1 and /api/inference call   api/app.py (authenticates first)  -> services/accounts.py
  /v1/models, /v1/<inference path>    api/inference_routes.py           -> services/inference.py
                                      ("async": true)                   -> api/jobs_routes.py
  /v1/jobs..., queue summary, assets  api/jobs_routes.py                -> services/jobs.py
  /v1/batches...                      api/batches_routes.py             -> services/batches.py
  /v1/workflows/...                   api/workflows_routes.py           -> services/workflows.py
  /api/inference/agent/heartbeat/     api/agent_routes.py               -> services/providers.py
"""

from switchyard.api.app import lambda_handler as handler

__all__ = ["handler"]
