"""A named lease in the database, so one job runs at a time across processes and machines.

PostgreSQL: a session-level `pg_try_advisory_lock` held on a dedicated connection (released by unlock, or by
the server when the connection dies, so a crashed holder never blocks others). SQLite: a row in `leases`
taken with one atomic upsert that only overwrites an expired lease or our own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.db.tables import Lease, utcnow

log = logging.getLogger("driftloop.leases")

_LEASES = Lease.__table__  # type: ignore[attr-defined]


def new_holder() -> str:
    """A holder id unique to this process and call site."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_try_advisory_lock`.

    >>> advisory_key("monitor:demo") == advisory_key("monitor:demo")
    True
    """
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def hold_lease(engine: sa.Engine, name: str, holder: str, seconds: float) -> Iterator[bool]:
    """Try to take lease `name`; yields True if this holder has it for the block, False otherwise.

    Never waits. On SQLite the lease lapses after `seconds` (a crashed holder frees it then); a job that
    runs longer may overlap another one, which idempotent job bodies tolerate.
    """
    if engine.dialect.name == "postgresql":
        with _pg_lease(engine, name) as acquired:
            yield acquired
        return
    acquired = _row_acquire(engine, name, holder, seconds)
    try:
        yield acquired
    finally:
        if acquired:
            _row_release(engine, name, holder)


@contextmanager
def _pg_lease(engine: sa.Engine, name: str) -> Iterator[bool]:
    key = advisory_key(name)
    conn = engine.connect()
    try:
        acquired = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one())
        conn.commit()
    except Exception:
        conn.invalidate()
        conn.close()
        raise
    try:
        yield acquired
    finally:
        if acquired:
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
            except Exception as exc:
                # closing the server session releases the lock; never hand a locked connection to the pool
                log.warning("advisory unlock of %s failed (%s); dropping the connection", name, exc)
                conn.invalidate()
        conn.close()


def _row_acquire(engine: sa.Engine, name: str, holder: str, seconds: float) -> bool:
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    stmt = sqlite_insert(_LEASES).values(name=name, holder=holder, expires_at=expires)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"holder": holder, "expires_at": expires},
        where=(_LEASES.c.expires_at < now) | (_LEASES.c.holder == holder),
    )
    with engine.begin() as conn:
        conn.execute(stmt)
        current = conn.execute(sa.select(_LEASES.c.holder).where(_LEASES.c.name == name)).scalar_one()
    return bool(current == holder)


def _row_release(engine: sa.Engine, name: str, holder: str) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(_LEASES).where(_LEASES.c.name == name, _LEASES.c.holder == holder))
    except Exception as exc:
        log.warning("release of lease %s failed (%s); it lapses at its expiry", name, exc)
