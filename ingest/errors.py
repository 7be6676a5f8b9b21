"""Errors of the ingest commands (all derive from monitor.errors.SlamonError)."""

from __future__ import annotations

from monitor.errors import EXIT_UNAVAILABLE, EXIT_USAGE, SlamonError


class IngestConfigError(SlamonError):
    """A gateway or probe config that cannot be used; the message names the file and the field."""

    exit_code = EXIT_USAGE


class KafkaUnavailable(SlamonError):
    """The broker did not acknowledge in time (or refused): the delivery is not accepted."""

    exit_code = EXIT_UNAVAILABLE
