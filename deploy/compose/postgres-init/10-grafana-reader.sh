#!/bin/sh
# The read-only role Grafana reads the SLA record with (deploy/grafana/provisioning/datasources/store.yaml).
#
# docker-compose.yml mounts this directory as the postgres image's /docker-entrypoint-initdb.d: it runs once, when
# the container initialises an empty data volume, as the database owner ($POSTGRES_USER, who is also the role
# `slamon store run` logs in as and so the owner of every table the store creates later). Elsewhere run it with
# PGHOST/PGPORT/PGUSER set, or run the same statements by hand (docs/dashboards.md).
#
#   SLAMON_GRAFANA_READER            the role (default slamon_grafana)
#   STORE_GRAFANA_PASSWORD_FILE      its password (default /run/secrets/store_grafana_password)
set -eu

reader="${SLAMON_GRAFANA_READER:-slamon_grafana}"
password="$(cat "${STORE_GRAFANA_PASSWORD_FILE:-/run/secrets/store_grafana_password}")"
owner="${POSTGRES_USER:-${PGUSER:-slamon}}"
database="${POSTGRES_DB:-${PGDATABASE:-slamon}}"

# psql substitutes :"name" (an identifier) and :'name' (a literal) itself, quoted: no value reaches the SQL text
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$owner" --dbname "$database" \
  -v reader="$reader" -v password="$password" -v owner="$owner" -v database="$database" <<'SQL'
CREATE ROLE :"reader" LOGIN PASSWORD :'password';
ALTER ROLE :"reader" SET default_transaction_read_only = on;
ALTER ROLE :"reader" SET statement_timeout = '10s';
GRANT CONNECT ON DATABASE :"database" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
-- the store creates (and later migrations add) its tables as the owner: the reader may read those too
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
SQL
