"""A multi-step order workflow, one event per step:

    POST /checkout -> order.placed -> ReceiveOrder -> inventory.check -> CheckInventory
      -> payment.process -> ProcessPayment -> order.confirmed -> SendConfirmation -> Outbox
      |                                   \\-> payment.failed -> ReleaseInventory
      \\-> order.cancelled (not enough stock)

Orders live in state "checkout-orders"; stock and prices in "inventory" (PUT /inventory/:sku).
"""
