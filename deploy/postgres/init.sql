-- Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d).
-- POSTGRES_DB already created driftloop's database; MLflow gets its own, because both use Alembic and
-- MLflow's `alembic_version` table must not meet driftloop's migrations (mlflow#3374).
CREATE DATABASE mlflow;
