"""`python -m switchyard_agent` runs the agent, for machines where the console script is not on PATH."""

import sys

from switchyard_agent.cli import main

sys.exit(main())
