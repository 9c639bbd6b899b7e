"""Food orders: POST /orders -> ProcessFoodOrder -> Notification, and the multi-trigger
ProcessOrder step (queue `process-order`, fifo per customer, or POST /process-order)."""
