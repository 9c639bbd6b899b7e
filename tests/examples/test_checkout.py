"""Seed 004's multi-step order workflow: order -> inventory -> payment -> confirmation."""

from __future__ import annotations

from typing import Any

from motet.testing import TestRuntime

from ._app import open_app, problem_errors


async def restock(app: TestRuntime, sku: str, units: int, price: int) -> None:
    r = await app.http.put(f"/inventory/{sku}", json={"units": units, "price": price})
    assert r.status == 200 and r.json == {"sku": sku, "units": units, "price": price}


async def checkout(
    app: TestRuntime, items: list[dict[str, Any]], card: str = "tok_visa"
) -> dict[str, Any]:
    r = await app.http.post(
        "/checkout", json={"email": "ann@example.com", "items": items, "cardToken": card}
    )
    assert r.status == 202, r.text
    await app.settle(fail_fast=True)
    order: dict[str, Any] = await app.state.get("checkout-orders", r.json["orderId"])
    return order


async def units(app: TestRuntime, sku: str) -> int:
    stock: dict[str, int] = await app.state.get("inventory", sku)
    return stock["units"]


async def test_a_paid_order_is_confirmed_by_email_and_sms(autojump_clock: Any) -> None:
    async with open_app("checkout") as app:
        await restock(app, "kibble", 5, 1299)
        await restock(app, "leash", 2, 500)
        order = await checkout(
            app, [{"sku": "kibble", "quantity": 2}, {"sku": "leash", "quantity": 1}]
        )
        assert order["status"] == "confirmed"
        assert order["amount"] == 2 * 1299 + 500
        assert order["paymentId"].startswith("pay_")
        assert (await units(app, "kibble"), await units(app, "leash")) == (3, 1)

        oid = order["orderId"]
        assert app.messages("order.placed") == [{"orderId": oid}]
        assert app.messages("inventory.check") == [{"orderId": oid}]
        assert app.messages("payment.process") == [{"orderId": oid, "amount": 3098}]
        assert app.messages("order.confirmed") == [
            {"orderId": oid, "paymentId": order["paymentId"]}
        ]
        outbox = await app.state.list("outbox")
        assert sorted(m["channel"] for m in outbox) == ["email", "sms"]
        [email] = [m for m in outbox if m["channel"] == "email"]
        assert email["to"] == "ann@example.com" and "(30.98 paid)" in email["body"]
        # one trace from the HTTP request to the last delivery
        assert len({r.trace_id for r in app.logs if r.step}) == 1


async def test_an_order_short_of_stock_is_cancelled_and_nothing_stays_reserved(
    autojump_clock: Any,
) -> None:
    async with open_app("checkout") as app:
        await restock(app, "kibble", 5, 1299)
        await restock(app, "leash", 2, 500)
        order = await checkout(
            app, [{"sku": "kibble", "quantity": 2}, {"sku": "leash", "quantity": 3}]
        )
        assert order["status"] == "cancelled"
        assert order["reason"] == "not enough stock of leash"
        assert (await units(app, "kibble"), await units(app, "leash")) == (5, 2)
        assert app.messages("order.cancelled") == [
            {"orderId": order["orderId"], "reason": "not enough stock of leash"}
        ]
        assert app.messages("payment.process") == []

        unknown = await checkout(app, [{"sku": "unicorn", "quantity": 1}])
        assert unknown["status"] == "cancelled"
        assert await app.state.get("inventory", "unicorn") is None


async def test_a_declined_card_releases_the_stock(autojump_clock: Any) -> None:
    async with open_app("checkout") as app:
        await restock(app, "kibble", 5, 1299)
        order = await checkout(app, [{"sku": "kibble", "quantity": 4}], card="tok_declined_1")
        assert order["status"] == "payment_failed"
        assert app.messages("payment.failed") == [
            {"orderId": order["orderId"], "reason": "card declined"}
        ]
        assert await units(app, "kibble") == 5
        assert app.messages("order.confirmed") == []
        assert await app.state.list("outbox") == []


async def test_checkout_and_restock_reject_bad_bodies(autojump_clock: Any) -> None:
    async with open_app("checkout") as app:
        base = {"email": "a@b.c", "cardToken": "tok"}
        r = await app.http.post("/checkout", json={**base, "items": []})
        assert r.status == 400 and "items" in r.text
        r = await app.http.post("/checkout", json={**base, "items": [{"sku": "k", "quantity": 0}]})
        assert r.status == 400 and "quantity" in r.text
        r = await app.http.post(
            "/checkout", json={**base, "items": [{"sku": "k", "quantity": "1"}]}
        )
        assert r.status == 400 and "$.body.items[0].quantity" in problem_errors(r)
        r = await app.http.post(
            "/checkout", json={"email": "a@b.c", "items": [{"sku": "k", "quantity": 1}]}
        )
        assert problem_errors(r) == {"$.body.cardToken": "required field missing"}
        r = await app.http.put("/inventory/kibble", json={"units": -1, "price": 10})
        assert r.status == 400 and "units" in r.text
        r = await app.http.put("/inventory/kibble", json={"units": 1, "price": "10"})
        assert r.status == 400 and "$.body.price" in problem_errors(r)
        await app.settle(fail_fast=True)
        assert app.messages("order.placed") == []
        assert await app.state.list("inventory") == []
