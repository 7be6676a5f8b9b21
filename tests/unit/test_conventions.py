"""monitor.conventions names every metric family the collector exports, once: the collector declares its
families with these constants, and the rule generator's recorded series are built from them."""

from __future__ import annotations

from monitor import conventions as names
from streams.metrics import _SPECS, exported_sla_names


def _constants(prefix: str) -> dict[str, str]:
    return {k: v for k, v in vars(names).items() if k.isupper() and isinstance(v, str) and v.startswith(prefix)}


def test_every_exported_family_is_a_convention_and_every_convention_is_exported():
    families = {v for v in _constants("slamon_").values() if not v.endswith(names.TOTAL)}
    assert families == set(_SPECS)


def test_counter_samples_carry_total():
    totals = {v for v in _constants("slamon_").values() if v.endswith(names.TOTAL)}
    counters = {name + names.TOTAL for name, (kind, _, _) in _SPECS.items() if kind == "counter"}
    assert totals == counters
    assert totals <= set(exported_sla_names())


def test_every_label_of_the_collector_is_a_convention():
    labels = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str) and v.islower()
              and not v.startswith(("slamon_", "client_sla", "_"))}
    used = {label for _, _, label_names in _SPECS.values() for label in label_names}
    assert used <= labels


def test_recorded_series_names():
    assert names.recorded_decided("1h") == "client_sla:slamon_sla_decided:increase1h"
    assert names.recorded_bad("5m") == "client_sla:slamon_sla_bad:increase5m"
    assert names.recorded_burn_rate("6h") == "client_sla:slamon_sla_burn_rate:6h"
    assert names.REC_ALLOWED == "client_sla:slamon_sla_allowed_error:ratio"
