"""A snapshot's definition file left empty by a full disk (a refreshable view exchanges its snapshot table at
every refresh, rewriting the definition): the embedded engine refuses to open such a store at all. It is
opened: the empty file is set aside and the migration that creates the snapshot runs again and rebuilds it,
while a table that holds data is never touched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from triage.store.repair import set_aside_empty_definitions

_OPEN = """
import json, sys
from triage.store import Store, migrations
store = Store('chdb://{data}')
applied = [m.version for m in migrations.apply_all(store)]
flow = store.query("SELECT count() FROM transaction_flow").result_rows[0][0]
refreshable = store.query(
    "SELECT count() FROM system.view_refreshes WHERE database = currentDatabase() AND view = 'transaction_flow_mv'"
).result_rows[0][0]
print(json.dumps({{"applied": applied, "flow_rows": flow, "refreshable": refreshable}}))
"""


def _open(data: Path) -> dict[str, object]:
    """Open the store at `data` and migrate it, in a process of its own (chDB: one data path per process)."""
    done = subprocess.run([sys.executable, "-c", _OPEN.format(data=data)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _definition(data: Path, name: str) -> Path:
    [found] = [p for p in data.glob(f"store/*/*/{name}.sql")]
    return found


@pytest.mark.slow
def test_an_empty_snapshot_definition_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _open(data)
    assert 17 in first["applied"]  # type: ignore[operator]
    _definition(data, "transaction_flow").write_bytes(b"")  # as the full disk left it

    again = _open(data)
    assert again == {"applied": [17], "flow_rows": 0, "refreshable": 1}, again
    assert [p.name.split(".sql")[0] for p in (data / "repaired").iterdir()] == ["transaction_flow"]
    assert _definition(data, "transaction_flow").stat().st_size > 0
    assert _open(data)["applied"] == [], "rebuilt once: the next start has nothing to do"


def test_only_an_empty_definition_of_derived_data_is_set_aside(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = data / "store" / "abc" / "abcdef01-2345-6789-abcd-ef0123456789"
    folder.mkdir(parents=True)
    for name in ("business_transactions", "transaction_rollup"):
        (folder / f"{name}.sql").write_bytes(b"")
    (folder / "transaction_flow.sql").write_text("ATTACH TABLE _ UUID '...' (x UInt8) ENGINE = Memory")
    # A snapshot is derived: set aside, kept under repaired/. A table of acknowledged data is left alone (the
    # store keeps refusing to open, and says why), and so is a definition that is not empty.
    assert set_aside_empty_definitions(str(data)) == ["transaction_rollup"]
    assert sorted(p.name for p in folder.iterdir()) == ["business_transactions.sql", "transaction_flow.sql"]
    assert [p.name.split(".sql")[0] for p in (data / "repaired").iterdir()] == ["transaction_rollup"]
