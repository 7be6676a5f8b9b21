"""The SLA record: every decision, withdrawal and breach of the SLA-events topic kept in a database (SQLite or
PostgreSQL), monthly reviews and disputed items answered from it. docs/sla-record.md describes it."""
