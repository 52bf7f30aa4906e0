"""JSON documents stored as `jsonb` on PostgreSQL and as text on SQLite, read and written as JSON text on
both, so that every reader (SQLAlchemy, raw DBAPI cursors, `sa.text`) sees the codec's text as before.

PostgreSQL's `jsonb` keeps the value, not the spelling: keys come back sorted (shorter first), with a space
after `:` and `,`, numbers as written in decimal (`1e300` as 301 digits, which orjson reads back as the
same double), and `-0.0` as `0.0`. NaN never reaches it: the codec writes null.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB


class _TextAsJSONB(sa.types.UserDefinedType[str]):
    """`jsonb` in the DDL; the bound text is cast by the server (no client-side JSON encoding)."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "JSONB"

    def bind_expression(self, bindvalue: sa.BindParameter[str]) -> sa.ColumnElement[str]:
        return sa.cast(bindvalue, JSONB)


class JSONText(sa.types.TypeDecorator[str]):
    """A JSON document column: `jsonb` on PostgreSQL, `TEXT` elsewhere; Python sees `str` either way."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_TextAsJSONB())
        return dialect.type_descriptor(sa.Text())


def jsonb_as_text(dbapi_connection: Any, _record: Any) -> None:
    """psycopg decodes `jsonb` into Python objects by default; driftloop's readers parse the text
    themselves (in bulk, with pyarrow or orjson), so every `jsonb` value is loaded as its text."""
    from psycopg.types.string import TextLoader

    dbapi_connection.adapters.register_loader("jsonb", TextLoader)
