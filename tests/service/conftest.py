from tests.retrain.conftest import migrated_db, mlflow_server, registry

__all__ = ["migrated_db", "mlflow_server", "registry"]
