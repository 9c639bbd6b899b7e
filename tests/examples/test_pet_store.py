"""The pet store (seeds 000 and 001): the REST API, the jobs a new pet triggers, the cron
reminders over a simulated month, and the soft delete + deletion reaper."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from motet.testing import TestRuntime

from ._app import at, fields_of, open_app, problem_errors

JAN_1 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # a Thursday

PETS = [
    {"name": "Buddy", "breed": "Golden Retriever", "age": 3},
    {"name": "Luna", "breed": "Persian Cat", "age": 2},
    {"name": "Charlie", "breed": "Poodle", "age": 4},
    {"name": "Whiskers", "breed": "Maine Coon", "age": 7},
    {"name": "Pip", "breed": "Beagle", "age": 1},
]


async def create_pets(app: TestRuntime, pets: list[dict[str, Any]]) -> dict[str, str]:
    """name -> id"""
    ids = {}
    for pet in pets:
        r = await app.http.post("/pets", json=pet)
        assert r.status == 200, r.text
        ids[pet["name"]] = r.json["id"]
    await app.settle(fail_fast=True)
    return ids


async def test_create_pet_stores_it_emits_and_runs_the_follow_up_jobs(autojump_clock: Any) -> None:
    async with open_app("pet_store") as app:
        r = await app.http.post("/pets", json={"name": "Rex", "breed": "Poodle", "age": 3})
        assert r.status == 200
        pet = r.json
        assert {k: pet[k] for k in ("name", "breed", "age")} == {
            "name": "Rex",
            "breed": "Poodle",
            "age": 3,
        }
        assert pet["createdAt"] == "2026-01-05T07:00:00+00:00"
        stored = await app.state.get("pets", pet["id"])
        assert {k: stored[k] for k in pet} == pet

        await app.settle(fail_fast=True)
        assert app.messages("pet-created") == [pet]
        [welcome] = fields_of(app, "AdoptionFollowUp", "Adoption welcome message sent")
        assert welcome["petId"] == pet["id"]
        assert welcome["subject"] == "Welcome Rex to our pet family!"
        assert "your 3-year-old Poodle" in welcome["message"]
        [package] = fields_of(app, "AdoptionFollowUp", "Welcome care package prepared")
        assert package["deliveryStatus"] == "scheduled"

        stored = await app.state.get("pets", pet["id"])
        assert stored["nextFeedingAt"] == "2026-01-06T07:00:00+00:00"
        assert app.log_messages("SetNextFeedingReminder") == [
            "Setting next feeding reminder",
            "Next feeding reminder set",
        ]
        # every log line of the request and its background jobs shares one trace
        assert len({r.trace_id for r in app.logs if r.step}) == 1


async def test_create_pet_rejects_bad_bodies_with_per_field_errors(autojump_clock: Any) -> None:
    async with open_app("pet_store") as app:
        r = await app.http.post("/pets", json={"name": "Rex", "breed": "Poodle", "age": "3"})
        assert r.status == 400
        assert "$.body.age" in problem_errors(r)

        r = await app.http.post("/pets", json={"breed": "Poodle"})
        assert r.status == 400
        errors = problem_errors(r)
        assert errors["$.body.name"] == "required field missing"
        assert errors["$.body.age"] == "required field missing"

        r = await app.http.post(
            "/pets", json={"name": "Rex", "breed": "Poodle", "age": 3, "owner": "me"}
        )
        assert r.status == 400 and "owner" in r.text

        r = await app.http.post("/pets", json={"name": "Rex", "breed": "Poodle", "age": -1})
        assert r.status == 400 and "'age' must be >= 0" in r.text

        r = await app.http.post("/pets", json={"name": "", "breed": "Poodle", "age": 1})
        assert r.status == 400 and "name" in r.text

        r = await app.http.post("/pets", json=[{"name": "Rex", "breed": "Poodle", "age": 3}])
        assert r.status == 400 and "expected an object" in r.text

        r = await app.http.post(
            "/pets", data='{"name": "Rex",', headers={"content-type": "application/json"}
        )
        assert r.status == 400
        assert r.json["type"] == "urn:motet:problem:malformed-json"

        await app.settle(fail_fast=True)
        assert app.messages("pet-created") == []
        assert await app.state.list("pets") == []


async def test_get_list_and_soft_delete(autojump_clock: Any) -> None:
    async with open_app("pet_store") as app:
        ids = await create_pets(app, PETS[:2])
        r = await app.http.get("/pets")
        assert r.status == 200 and sorted(p["name"] for p in r.json) == ["Buddy", "Luna"]

        r = await app.http.get(f"/pets/{ids['Luna']}")
        assert r.status == 200 and r.json["breed"] == "Persian Cat"
        r = await app.http.get("/pets/no-such-pet")
        assert r.status == 404 and r.json == {"error": "pet no-such-pet not found"}
        r = await app.http.delete("/pets/no-such-pet")
        assert r.status == 404

        r = await app.http.delete(f"/pets/{ids['Luna']}")
        assert r.status == 200
        assert r.json["deleted"] is True
        assert r.json["deletedAt"] == "2026-01-05T07:00:00+00:00"
        assert r.json["purgeAt"] == "2026-02-04T07:00:00+00:00"
        assert [p["name"] for p in (await app.http.get("/pets")).json] == ["Buddy"]
        # still readable until purged, marked as deleted
        assert (await app.http.get(f"/pets/{ids['Luna']}")).json["deleted"] is True

        await app.advance(timedelta(days=2))
        again = await app.http.delete(f"/pets/{ids['Luna']}")
        assert again.status == 200 and again.json["purgeAt"] == "2026-02-04T07:00:00+00:00"


async def test_a_simulated_month_of_reminders(autojump_clock: Any) -> None:
    async with open_app("pet_store", start=JAN_1) as app:
        ids = await create_pets(app, PETS)
        await app.run_until(datetime(2026, 2, 1, 0, 0, tzinfo=UTC))
        await app.settle(fail_fast=True)

        feeding_runs = [
            r
            for r in app.logs_of("DailyFeedingReminder")
            if r.message == "Starting daily feeding reminder job"
        ]
        assert len(feeding_runs) == 31
        assert [at(app, r.time) for r in feeding_runs] == [
            datetime(2026, 1, day, 8, 0, tzinfo=UTC) for day in range(1, 32)
        ]
        sent = fields_of(app, "DailyFeedingReminder", "Daily feeding reminder sent")
        assert Counter(f["petName"] for f in sent) == {p["name"]: 31 for p in PETS}
        schedule = {f["petName"]: f["feedingSchedule"] for f in sent}
        assert schedule["Luna"] == "2 meals per day"  # a cat
        assert schedule["Buddy"] == "3 meals per day"

        grooming_runs = [
            r
            for r in app.logs_of("WeeklyGroomingReminder")
            if r.message == "Starting weekly grooming reminder job"
        ]
        mondays = [datetime(2026, 1, d, 9, 0, tzinfo=UTC) for d in (5, 12, 19, 26)]
        assert [at(app, r.time) for r in grooming_runs] == mondays
        grooming = {
            f["petName"]: f
            for f in fields_of(app, "WeeklyGroomingReminder", "Weekly grooming reminder sent")
        }
        assert grooming["Charlie"]["recommendedFrequency"] == "Every 4-6 weeks"  # poodle
        assert grooming["Luna"]["groomingTasks"] == ["brushing", "nail trimming"]
        assert grooming["Buddy"]["recommendedFrequency"] == "Every 6-8 weeks"

        vet_runs = [
            r
            for r in app.logs_of("MonthlyVetReminder")
            if r.message == "Starting monthly vet checkup reminder job"
        ]
        assert [at(app, r.time) for r in vet_runs] == [datetime(2026, 1, 1, 10, tzinfo=UTC)]
        vet = {
            f["petName"]: f
            for f in fields_of(app, "MonthlyVetReminder", "Monthly vet checkup reminder sent")
        }
        assert vet["Whiskers"]["message"].endswith(
            "Senior pet - enhanced health monitoring recommended"
        )
        assert vet["Pip"]["urgencyLevel"] == "high"  # young
        assert vet["Luna"]["checkupFrequency"] == "Annually"
        assert vet["Luna"]["message"].endswith("Adult cat - routine preventive care")
        assert vet["Buddy"]["message"].endswith("Adult dog - standard wellness checkup")
        assert {f["month"] for f in vet.values()} == {"January 2026"}
        assert len(ids) == len(vet)


async def test_reminders_read_pets_from_state(autojump_clock: Any) -> None:
    async with open_app("pet_store") as app:  # Monday 07:00
        await app.run_until(datetime(2026, 1, 5, 8, 30, tzinfo=UTC))
        [done] = fields_of(app, "DailyFeedingReminder", "Daily feeding reminder job completed")
        assert done["totalPets"] == 0

        ids = await create_pets(app, PETS[:3])
        await app.http.delete(f"/pets/{ids['Charlie']}")
        await app.run_until(datetime(2026, 1, 6, 8, 30, tzinfo=UTC))
        sent = fields_of(app, "DailyFeedingReminder", "Daily feeding reminder sent")
        assert sorted(f["petName"] for f in sent) == ["Buddy", "Luna"]  # not the deleted one


async def test_the_reaper_purges_only_expired_soft_deleted_pets(autojump_clock: Any) -> None:
    async with open_app("pet_store", start=JAN_1) as app:
        ids = await create_pets(app, PETS[:3])
        await app.http.delete(f"/pets/{ids['Buddy']}")  # purgeAt Jan 31 00:00
        await app.advance(timedelta(days=10))
        await app.http.delete(f"/pets/{ids['Luna']}")  # purgeAt Feb 10 00:00

        await app.run_until(datetime(2026, 1, 31, 1, 59, tzinfo=UTC))
        assert len(await app.state.list("pets")) == 3
        await app.run_until(datetime(2026, 1, 31, 2, 1, tzinfo=UTC))
        assert await app.state.get("pets", ids["Buddy"]) is None
        assert await app.state.get("pets", ids["Luna"]) is not None
        assert (await app.http.get(f"/pets/{ids['Buddy']}")).status == 404

        await app.run_until(datetime(2026, 2, 10, 3, 0, tzinfo=UTC))
        assert [p["name"] for p in await app.state.list("pets")] == ["Charlie"]
        purged = [
            f["petIds"]
            for f in fields_of(app, "DeletionReaper", "Deletion reaper finished")
            if f["purged"]
        ]
        assert purged == [[ids["Buddy"]], [ids["Luna"]]]
        runs = [r for r in app.logs_of("DeletionReaper")]
        assert {at(app, r.time).time().isoformat() for r in runs} == {"02:00:00"}
        assert len(runs) == 41  # Jan 1 .. Feb 10, daily


async def test_list_pets_is_paged(autojump_clock: Any) -> None:
    """GET /pets was unbounded: a store of many pets made one huge answer (slow to build,
    and a slow reader pinned it in memory). Pages of 50 by default, at most 200."""
    async with open_app("pet_store") as app:
        for i in range(7):
            await app.http.post("/pets", json={"name": f"P{i}", "breed": "Beagle", "age": 1})
        await app.settle(fail_fast=True)
        first = await app.http.get("/pets?limit=3")
        assert first.status == 200 and len(first.json) == 3
        ids = [p["id"] for p in first.json]
        assert ids == sorted(ids)
        assert first.headers["link"] == f'</pets?limit=3&after={ids[-1]}>; rel="next"'
        seen = list(ids)
        while "link" in (page := await app.http.get(f"/pets?limit=3&after={seen[-1]}")).headers:
            seen += [p["id"] for p in page.json]
        seen += [p["id"] for p in page.json]
        assert len(seen) == 7 == len(set(seen))
        assert len((await app.http.get("/pets")).json) == 7  # default page: 50
        for bad in ("limit=0", "limit=201", "limit=many"):
            r = await app.http.get(f"/pets?{bad}")
            assert r.status == 400, bad
