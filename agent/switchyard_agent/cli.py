"""`switchyard-agent`: serve a local model server to a Switchyard gateway. See config.py for the options."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from switchyard_agent.config import parse_args
from switchyard_agent.runtime import Agent
from switchyard_agent.serving import run_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at INFO; with a heartbeat every few seconds that drowns everything else.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        run_event_loop(Agent(config).run())
    except KeyboardInterrupt:  # a Ctrl-C that arrived before the signal handlers were installed
        pass
    except OSError as exc:
        logging.getLogger("switchyard_agent").error("cannot start: %s", exc)
        return 1
    return 0
