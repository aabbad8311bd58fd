"""A part torn by a full disk (a marks file shorter than it should be) fails every read of it: it is detached
when written after the last good write, and kept, with the error, when it may hold acknowledged rows."""

from __future__ import annotations

import glob
from datetime import UTC, datetime, timedelta

import pytest

from triage.store import Store
from triage.store.repair import detach_torn_part, torn_part


def _tear(store: Store) -> str:
    """A one-part table whose column marks file is emptied, as ENOSPC leaves it; the read error."""
    store.command(
        "CREATE TABLE torn (x UInt64) ENGINE = MergeTree ORDER BY tuple() SETTINGS min_bytes_for_wide_part = 0"
    )
    store.insert("torn", [[i] for i in range(100)], ["x"])
    [(path,)] = store.query(
        "SELECT path FROM system.parts WHERE database = currentDatabase() AND table = 'torn'"
    ).result_rows
    for marks in glob.glob(f"{path}x.*mrk*"):
        open(marks, "w").close()
    with pytest.raises(Exception, match="marks file") as failure:  # noqa: B017
        store.query("SELECT sum(x) FROM torn")
    return str(failure.value)


def test_a_part_torn_after_the_last_good_write_is_detached_and_reads_work_again(store: Store) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    error = _tear(store)
    assert torn_part(error) is not None, error
    detached = detach_torn_part(store, error, before)
    assert detached is not None and detached.endswith(".torn/all_1_1_0")
    assert store.query("SELECT count() FROM torn").result_rows == [(0,)]
    kept = store.query(
        "SELECT count() FROM system.detached_parts WHERE database = currentDatabase() AND table = 'torn'"
    )
    assert kept.result_rows == [(1,)], "the part is kept on disk under detached/, not deleted"


def test_a_torn_part_that_may_hold_acknowledged_rows_is_left_alone(store: Store) -> None:
    error = _tear(store)
    assert detach_torn_part(store, error, datetime.now(UTC) + timedelta(minutes=1)) is None
    with pytest.raises(Exception, match="marks file"):  # noqa: B017 (the driver's exception types vary)
        store.query("SELECT sum(x) FROM torn")


def test_a_torn_merged_part_is_left_alone_it_holds_rows_of_finished_writes(store: Store) -> None:
    error = _tear(store)
    merged = error.replace("/all_1_1_0/", "/all_1_6_1/")
    assert torn_part(merged) is not None
    assert detach_torn_part(store, merged, datetime.now(UTC) - timedelta(minutes=1)) is None


def test_other_errors_are_not_taken_for_torn_parts(store: Store) -> None:
    assert (
        detach_torn_part(
            store, "Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space", datetime.now(UTC)
        )
        is None
    )


def test_the_message_of_a_skip_index_torn_under_a_full_disk_names_its_part() -> None:
    seen = (
        "DatabaseError: Code: 33. DB::Exception: Cannot read all marks from file /tmp/x/data/store/ee6/"
        "ee654243-0fbd-4f05-9b44-6840b4ba9c07/20261202_5_5_0/skp_idx_idx_triage_request.cmrk4, marks expected 1 "
        "(bytes size 24), marks read 0 (bytes size 0): While executing MergeTreeSelect. (CANNOT_READ_ALL_DATA)"
    )
    assert torn_part(seen) == ("ee654243-0fbd-4f05-9b44-6840b4ba9c07", "20261202_5_5_0")
