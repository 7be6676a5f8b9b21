"""slamon ingest: events from the systems BPO floors already run (webhooks, a PBX queue log, probes), mapped to
spec events and produced to the events topic. See ingest/README.md."""
