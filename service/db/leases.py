"""A named lease in the database, so one job runs at a time across processes and machines.

PostgreSQL: a session-level `pg_try_advisory_lock` held on a dedicated connection (released by unlock, or by
the server when the connection dies, so a crashed holder never blocks others). SQLite: a row in `leases`
taken with one atomic upsert that only overwrites an expired lease or our own, and renewed by a thread
while held, so a job running longer than the lease keeps it (a crashed holder's lease lapses).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
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

    Never waits. On SQLite the lease is renewed every `seconds` / 3 while the block runs and lapses
    `seconds` after the last renewal (a crashed holder frees it then).
    """
    if engine.dialect.name == "postgresql":
        with _pg_lease(engine, name) as acquired:
            yield acquired
        return
    acquired = _row_acquire(engine, name, holder, seconds)
    if not acquired:
        yield False
        return
    stop = threading.Event()
    renewer = threading.Thread(
        target=_keep_renewed, args=(engine, name, holder, seconds, stop), name=f"lease:{name}", daemon=True
    )
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join()
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


def _renew(engine: sa.Engine, name: str, holder: str, seconds: float) -> bool:
    expires = utcnow() + timedelta(seconds=seconds)
    stmt = (
        sa.update(_LEASES)
        .where(_LEASES.c.name == name, _LEASES.c.holder == holder)
        .values(expires_at=expires)
    )
    with engine.begin() as conn:
        return bool(conn.execute(stmt).rowcount)


def _keep_renewed(engine: sa.Engine, name: str, holder: str, seconds: float, stop: threading.Event) -> None:
    while not stop.wait(seconds / 3):
        try:
            if not _renew(engine, name, holder, seconds):
                log.error(
                    "lease %s was taken over while %s held it; the job may overlap another", name, holder
                )
                return
        except Exception as exc:  # the next renewal retries; the lease lapses only if every one fails
            log.warning("renewal of lease %s failed (%s)", name, exc)


def _row_release(engine: sa.Engine, name: str, holder: str) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(_LEASES).where(_LEASES.c.name == name, _LEASES.c.holder == holder))
    except Exception as exc:
        log.warning("release of lease %s failed (%s); it lapses at its expiry", name, exc)
