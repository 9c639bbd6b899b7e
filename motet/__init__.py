"""motet: Motia-style steps (HTTP, queues, cron, state) as supervised trio actors."""
