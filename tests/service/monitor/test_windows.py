"""Row blocks resolved to their `seq` range by reading only the blocks' edges: the same ranges as listing
every `seq` in commit order, with another model's rows in between (gaps in the model's seqs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from service.db.engine import make_engine
from service.monitor.windows import P, bounds, edge_seqs, resolve_blocks, row_block, version_filter
from tests.support.prediction_log import insert, prediction_row, unique_model


def test_blocks_resolve_to_the_seqs_of_their_edges(database_url: str) -> None:
    engine = make_engine(database_url)
    model, other = unique_model("edges"), unique_model("other")
    now = datetime.now(UTC)
    for i in range(6):  # interleaved: the model's seqs are not consecutive
        insert(engine, [prediction_row(model, now, {"x": float(j)}) for j in range(5 + i)])
        insert(engine, [prediction_row(other, now, {"x": 0.0}) for _ in range(3)])
    with engine.connect() as conn:
        where = version_filter(model, "1")
        listed = list(conn.execute(sa.select(P.c.seq).where(where).order_by(P.c.seq)).scalars())
        assert len(listed) == 45
        blocks = [row_block("drift", model, "1", 10, i) for i in (3, 0, 1)]  # any order, not adjacent
        resolved = resolve_blocks(conn, blocks)
        assert [(b.first_seq, b.last_seq) for b in resolved] == [
            (listed[b.offset or 0], listed[(b.offset or 0) + 9]) for b in blocks
        ]
        one = resolve_blocks(conn, [row_block("drift", model, "1", 1, 44)])[0]
        assert one.first_seq == one.last_seq == listed[44]
        upto = resolve_blocks(conn, [row_block("drift", model, "1", 10, 0)], upto=listed[9])[0]
        assert upto.last_seq == listed[9]
        with pytest.raises(LookupError, match="not complete"):
            resolve_blocks(conn, [row_block("drift", model, "1", 10, 0)], upto=listed[8])
        with pytest.raises(LookupError, match="not complete"):
            resolve_blocks(conn, [row_block("drift", model, "1", 10, 4)])  # rows 40..49 of 45
        assert edge_seqs(conn, "drift", where, [0, 7, 7, 44, 45]) == [
            listed[0],
            listed[7],
            listed[7],
            listed[44],
        ]
    engine.dispose()


def test_a_blocks_time_span_is_that_of_its_own_rows(database_url: str) -> None:
    """With rows on both sides of the block (read over the block's seq range) and without (from the time
    index's ends); times out of seq order."""
    engine = make_engine(database_url)
    model = unique_model("span")
    now = datetime.now(UTC)
    minutes = [5, 1, 9, 3, 7, 0, 8, 2, 6, 4, 11, 10]  # row i at now + minutes[i]
    for m in minutes:
        insert(engine, [prediction_row(model, now + timedelta(minutes=m), {"x": 1.0})])
    with engine.connect() as conn:
        for size, index in ((4, 1), (4, 0), (12, 0)):
            block = resolve_blocks(conn, [row_block("drift", model, "1", size, index)])[0]
            own = [now + timedelta(minutes=m) for m in minutes[index * size : (index + 1) * size]]
            first, last = bounds(conn, block)
            assert first is not None and last is not None
            assert (first.timestamp(), last.timestamp()) == (min(own).timestamp(), max(own).timestamp())
    engine.dispose()
