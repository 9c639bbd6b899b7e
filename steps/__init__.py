"""motet's example application: every example of the Motia guides, as Python steps.

    pet_store/    the pet store API and its background jobs (create, soft delete, reminders)
    messages/     the message pipeline: send, process with retries, dead letters, cleanup
    greetings/    the hello-world greeting worker
    food_orders/  the food order -> notification chain and the multi-trigger order step
    scheduled/    a periodic job and a cron batch processor over state
    jobs/         background job patterns: uploads, job status with progress, cleanup, priority
    checkout/     a multi-step order workflow: order -> inventory -> payment -> confirmation

Files named `*_step.py` are steps; the other modules are shared code the steps import as
`steps.<example>.<module>` (motet puts the project folder on `sys.path`).
"""
