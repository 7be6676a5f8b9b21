# slamon developer entry points.
#
#   make demo        the whole pipeline on this machine without Docker (Kafka, 2 workers, Prometheus,
#                    Alertmanager, traffic generator); Ctrl-C stops everything. DEMO_ARGS="--duration 300"
#                    FEED=gateway: vendor webhooks (the connector fixtures, replayed live 60x faster) through
#                    `slamon ingest` instead of the generator; FEED=both: the two
#   make test        the README's test command (python -m pytest -q) in .venv
#   make deploy-config   regenerate the committed deploy files (rules, alertmanager.yml, k8s manifests)
#   make dashboards      regenerate the Grafana dashboards (deploy/grafana/dashboards, from alerts/dashboards.py)
#   make secrets     create deploy/secrets/* for docker-compose (random values, never committed): the Grafana
#                    admin password, the SLA record's postgres owner and read-only Grafana role passwords
#   make compose-check   docker-compose config -q
#   make kafka-tools     Kafka's command-line tools beside the test broker (prints their directory)
#   make ops-doc     docs/operations.md followed step by step, as CI does (a broker, two workers; ~2 min)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ARGS ?=
FEED ?= generator

.PHONY: demo test venv deploy-config dashboards secrets compose-check lint kafka-tools ops-doc

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'

venv: $(PY)

# deploy/local/demo.py installs whatever else is missing (Python packages into .venv; JDK, Maven,
# Prometheus and Alertmanager via .ci/install-services.sh when root; the Kafka jars from Maven Central)
demo: $(PY)
	$(PY) -m deploy.local.demo --feed $(FEED) $(DEMO_ARGS)

test: $(PY)
	. $(VENV)/bin/activate && python -m pytest -q

lint: $(PY)
	$(VENV)/bin/ruff check .

deploy-config: $(PY)
	$(VENV)/bin/slamon rules examples/contracts.yaml -o deploy/prometheus/rules --alerting examples/alerting.yaml
	$(VENV)/bin/slamon alertmanager -o deploy/alertmanager/alertmanager.yml --alerting deploy/alertmanager/alerting.yaml
	$(PY) deploy/k8s/generate.py

dashboards: $(PY)
	$(VENV)/bin/slamon dashboards -o deploy/grafana/dashboards

# Compose bind-mounts a file secret with its host owner and mode (uid/gid/mode need Swarm), and Grafana (uid
# 472), postgres (999) and slamon (10001) are not the host user: the files are 0644 inside a 0700 directory,
# readable in their containers and by no other user of this machine.
secrets:
	@chmod 700 deploy/secrets; umask 077; for name in grafana_admin_password store_db_password store_grafana_password; do \
	  f=deploy/secrets/$$name; \
	  if [ -s $$f ]; then echo "$$f exists"; \
	  else head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > $$f; echo "created $$f"; fi; \
	  chmod 644 $$f; \
	done

compose-check:
	docker-compose config -q

kafka-tools:
	bash deploy/kafka/kafka.sh tools

ops-doc: $(PY)
	. $(VENV)/bin/activate && SLAMON_REQUIRE_SERVICES=1 python -m pytest -q -rP tests/integration/test_operations_doc.py
