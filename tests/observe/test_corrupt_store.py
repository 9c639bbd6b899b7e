"""A corrupt telemetry database never blocks a start (issue 11, item 11): it is moved aside,
kept under a name the warning gives, and a new one is started."""

from __future__ import annotations

from pathlib import Path

from motet.backends._sqlite import SqliteBackend
from motet.observe import LogQuery, SqliteTelemetryStore, TelemetryOptions

from ._app import open_observed
from .test_store import pipeline

GARBAGE = b"this is not a SQLite database, it was damaged " * 200


async def test_a_corrupt_telemetry_db_is_moved_aside_and_the_runtime_starts(
    tmp_path: Path,
) -> None:
    db = tmp_path / "data" / "motet.db"
    db.parent.mkdir()
    telemetry_db = db.parent / "telemetry.db"
    telemetry_db.write_bytes(GARBAGE)
    options = TelemetryOptions()  # the default store: telemetry.db beside the backend's file
    async with open_observed(pipeline(), backend=SqliteBackend(db), telemetry=options) as app:
        response = await app.http.post("/in", json={})
        assert response.status_code == 202
        await app.settle()
        await app.telemetry.flush()
        warnings = await app.telemetry.logs(LogQuery(limit=100, level="warn"))
    kept = db.parent / "telemetry.db.corrupt"
    assert kept.read_bytes() == GARBAGE
    [warning] = [w for w in warnings if "corrupt" in w.message]
    assert warning.fields["kept_at"] == str(kept)
    assert telemetry_db.is_file() and telemetry_db.read_bytes() != GARBAGE


def test_an_earlier_corrupt_copy_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.db"
    (tmp_path / "telemetry.db.corrupt").write_bytes(b"first")
    path.write_bytes(GARBAGE)
    store = SqliteTelemetryStore(path)
    store.close()
    assert store.moved_aside == tmp_path / "telemetry.db.corrupt.1"
    assert (tmp_path / "telemetry.db.corrupt").read_bytes() == b"first"
    assert (tmp_path / "telemetry.db.corrupt.1").read_bytes() == GARBAGE
    again = SqliteTelemetryStore(path)  # the new file is sound: nothing moved
    again.close()
    assert again.moved_aside is None
