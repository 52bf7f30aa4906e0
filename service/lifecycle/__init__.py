"""The prediction log's lifecycle: export to Parquet (by hand or daily to a lake), retention, daily rollups.

Below the monitor and above the database: it imports only `db`, `config`, `codec` and `metrics`, so the
scheduler, the CLI and the dashboard can all use it.
"""
