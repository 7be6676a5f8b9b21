"""Importers: turn real operational logs into slamon wire events (spec section 1).

Each importer yields JSON-ready event dicts sorted by event time, ready for `slamon replay`.
"""
