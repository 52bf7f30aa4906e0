"""The next label arrival number (`feedback.seq`), as a column default that works on both backends.

PostgreSQL: `nextval` of a plain sequence (CACHE 1, so values are handed out in time order across
sessions; service/monitor/settled.py relies on it). SQLite: the table's highest `seq` plus one, read in
the statement itself, under the single write lock. Every insert gets it, including the ORM's and raw
Core inserts that name no `seq`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

FEEDBACK_SEQUENCE = "feedback_seq_seq"


class next_feedback_seq(FunctionElement[int]):  # noqa: N801 (a SQL function)
    type = sa.BigInteger()
    inherit_cache = True


@compiles(next_feedback_seq)
def _default(element: next_feedback_seq, compiler: SQLCompiler, **kw: Any) -> str:
    return "(SELECT coalesce(max(seq), 0) + 1 FROM feedback)"


@compiles(next_feedback_seq, "postgresql")
def _postgres(element: next_feedback_seq, compiler: SQLCompiler, **kw: Any) -> str:
    return f"nextval('{FEEDBACK_SEQUENCE}')"
