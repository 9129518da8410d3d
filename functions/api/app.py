"""ApiFunction: every /v1 and /api/inference route (HTTP API payload v2).

The routes live in the shared layer (`switchyard.api`) because the StreamFunction's front serves the
same resolver; this file is the Lambda entry point.
"""

from switchyard.api.app import lambda_handler as handler

__all__ = ["handler"]
