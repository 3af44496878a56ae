# Source this file: starts the local PostgreSQL 15 cluster (as CI does) and exports
# FIELDOPS_TEST_DATABASE_URL. Without PostgreSQL on the machine it says so and returns.
if [ -n "${FIELDOPS_TEST_DATABASE_URL:-}" ]; then
  return 0 2>/dev/null || exit 0
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  pg_ctlcluster --skip-systemctl-redirect 15 main start 2>/dev/null || true
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  su postgres -c "psql -tc \"SELECT 1 FROM pg_database WHERE datname='fieldops_test'\"" | grep -q 1 \
    || su postgres -c "createdb fieldops_test"
  export FIELDOPS_TEST_DATABASE_URL=postgresql+psycopg://postgres:postgres@127.0.0.1:5432/fieldops_test
  echo "PostgreSQL tests: $FIELDOPS_TEST_DATABASE_URL"
else
  echo "PostgreSQL 15 not available here: the PostgreSQL variants of the database tests will be skipped (CI=true fails instead)."
fi
