"""The prediction log's lifecycle: export to Parquet, retention, daily rollups.

Below the monitor and above the database: it imports only `db`, `config` and `codec`, so the scheduler,
the CLI and the dashboard can all use it.
"""
