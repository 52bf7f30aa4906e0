from tests.retrain.conftest import migrated_db, mlflow_server

__all__ = ["migrated_db", "mlflow_server"]
