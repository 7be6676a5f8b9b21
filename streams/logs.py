"""The worker's logging: format, level, secrets masked, and the libraries' first-start noise explained or quieted.

    configure_logging(settings)      # before anything connects (run_worker)

What a worker used to log at its first start, and what became of it (docs/troubleshooting.md has the same list):

- kafka-python (`slamon topics`, the restore consumer): `Broker version identified as 2.6` against a 4.x broker.
  2.6 is the newest release kafka-python 2.2's version probe knows by name; every request's version is still
  negotiated from the broker's ApiVersions answer, so nothing is downgraded. With its connection chatter it is
  logged from WARNING up only (all of it at `log_level: debug`).
- aiokafka: `Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError` (an ERROR) once on a
  new broker: the broker creates `__consumer_offsets` on the first group request and answers "not available" until
  it has; aiokafka retries. `slamon topics create` (and the worker's own topic check) now waits for the group
  coordinator, so it is normally gone; should it still come (a broker restarting), it is logged as INFO with this
  explanation.
- mode: `Timer ... woke up too late, with a drift of ...` (INFO): the event loop was busy for longer than a timer's
  interval (the start, a restore, a catch-up batch). Harmless; the clock catches up at the next tick. Logged at
  debug level only; a loop that stays busy shows as `slamon_consumer_lag_messages` growing.
"""

from __future__ import annotations

import logging

from streams.config import Settings, redact_secrets_in_logs

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
COORDINATOR_NOTE = (" (transient: a new broker creates __consumer_offsets on the first group request and answers "
                    "'not available' until it has; retried)")
# loggers whose INFO is noise at the default level (shown at log_level debug)
QUIET = {"kafka": logging.WARNING, "mode.timers": logging.WARNING}


class CoordinatorNotAvailable(logging.Filter):
    """aiokafka logs a retried `GroupCoordinatorNotAvailableError` as an ERROR: INFO with what it means."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and "CoordinatorNotAvailable" in record.getMessage():
            record.msg, record.args = record.getMessage() + COORDINATOR_NOTE, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def configure_logging(settings: Settings) -> None:
    level = settings.log_level.upper()
    logging.basicConfig(level=level, format=FORMAT)
    redact_secrets_in_logs(settings)
    if level != "DEBUG":
        for name, quiet in QUIET.items():
            logging.getLogger(name).setLevel(quiet)
    logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(CoordinatorNotAvailable())
