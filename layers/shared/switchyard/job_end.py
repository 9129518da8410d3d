"""The job-end hook: one announcement when a job ends, heard by every subscriber.

A job ends when a conditional write moves it to PROCESSED, FAILED or CANCELED (the dispatcher, a cancel
by its owner or by a workflow, the sweeper giving up on it). Only the writer whose write succeeded
announces, right after the write, through `JobLifecycle`; nobody else calls `announce`. Features that
follow a job's end (its metrics and log line, a workflow step answering its task token, the webhooks
that hear of it) subscribe here instead of being imported by the jobs code. The subscribers are wired
once per process, explicitly, in `switchyard.wiring`.

What a subscriber can rely on:
- Delivery is at least once. The ending write itself marks the job `unannounced` (the one outbox of job
  ends: the jobs table's sparse `unannounced_ends` index, every end, whoever hears of it); when every
  subscriber has returned without raising, the mark is removed. A subscriber that raises, or a process
  that dies between the ending write and the end of `announce`, leaves the mark, and the sweeper
  announces the end again, to every subscriber, once it is older than REDRIVE_AFTER_SECONDS (60 s),
  every sweep, until all of them succeed or it is older than JOB_END_REDRIVE_MAX_AGE_SECONDS (a day),
  when it gives up and logs so. So a subscriber may hear the same end more than once (and a little
  late): it must be idempotent, keyed by job id and `gen`.
- Only the ends a subscriber says it hears (`subscribe(..., hears=...)`: a test of what the job carried
  from its creation, such as its webhook or its task token; every end when it says nothing) reach it,
  and an end that no at-least-once subscriber hears is not marked at all: the writer that ends a job it
  read (the dispatcher, with the job it claimed) asks `must_be_heard` first, so a plain job's end costs
  no outbox write and no write to take it out again. Writers that end a job they did not read (a cancel,
  the sweeper failing a queued job) mark it whatever it carries, and `announce` takes the mark off.
- Except a subscriber that asks for at most once (`subscribe(..., once=True)`: the job's metrics and
  log line, which must not count an end twice): it hears only the ending writer's announcement, and
  its failure does not keep the mark (a lost metric is better than a doubled one).
- To ask for another try, a subscriber raises (after logging what went wrong, if it can say more);
  to say "done, nothing more to do" it returns. Answering a task token twice is harmless, so is
  storing a webhook delivery under its stable id: both subscribers can simply act again.
- It hears the job as the ending write left it (the item after the write). A job re-queued by its owner
  (POST .../retry) and ending again is a new end, announced again: tell the two apart by `gen`. An end
  re-queued before it was announced is not announced any more.
- Subscribers are called synchronously, in the order they subscribed, on the thread that ended the job.
  A subscriber that raises is logged (with its name) and the next one is still called; `announce`
  itself never raises, because the job has ended whatever a subscriber does.
- Announcements of different jobs may run at the same time (a batch cancel ends jobs in threads), so
  subscribers must be thread-safe. They run before the dispatcher frees the provider slot of the run
  that ended: keep them short, and hand slow work (HTTP delivery) to a queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from switchyard.job_model import Job

logger = logging.getLogger(__name__)

JobEndSubscriber = Callable[[Job], None]
# Which ends a subscriber acts on. It must test only what a job carries from its creation: the writer
# decides from the job as it read it before the ending write.
JobEndFilter = Callable[[Job], bool]


@dataclass(frozen=True)
class _Subscription:
    name: str
    callback: JobEndSubscriber
    once: bool  # at most once: the ending writer's announcement only
    hears: JobEndFilter | None  # None: every end

    def hears_end_of(self, job: Job) -> bool:
        return self.hears is None or self.hears(job)


class JobEndHook:
    def __init__(self) -> None:
        self._subscriptions: tuple[_Subscription, ...] = ()
        self._lock = threading.Lock()

    def subscribe(
        self,
        name: str,
        callback: JobEndSubscriber,
        *,
        once: bool = False,
        hears: JobEndFilter | None = None,
    ) -> None:
        """Call `callback(job)` after every later end (of the jobs `hears`, if given); `name` identifies it
        in logs. `once`: only on the first announcement of an end, never on the sweeper's (see the
        module's docstring)."""
        with self._lock:
            if any(s.name == name for s in self._subscriptions):
                raise ValueError(f"a job-end subscriber named {name!r} is already subscribed")
            self._subscriptions += (_Subscription(name, callback, once, hears),)

    @property
    def subscribers(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._subscriptions)

    def must_be_heard(self, job: Job) -> bool:
        """Whether the end of `job` must wait in the outbox until announced: an at-least-once subscriber
        hears it. False for a plain job (no webhook, no workflow step), whose ending write then marks
        nothing."""
        return any(not s.once and s.hears_end_of(job) for s in self._subscriptions)

    def announce(self, job: Job, *, again: bool = False) -> bool:
        """Tell every subscriber, in subscription order, that `job` ended (`again`: the sweeper's
        re-announcement, which at-most-once subscribers do not hear). Never raises; True when every
        at-least-once subscriber heard it (returned), False when one raised (announce it again)."""
        heard = True
        for subscription in self._subscriptions:  # a tuple: a subscribe meanwhile does not disturb this loop
            if (again and subscription.once) or not subscription.hears_end_of(job):
                continue
            try:
                subscription.callback(job)
            except Exception:  # one subscriber's failure must not keep the others from hearing
                heard = heard and subscription.once
                logger.exception(
                    "job-end subscriber %r failed for job %s (%s)", subscription.name, job.job_id, job.status
                )
        return heard
