"""Topics this app emits for consumers outside it (analytics, notifications, other services).

A noop step runs nothing. It draws those consumers in the flows graph and tells motet's
start-time checks that no step here is meant to subscribe. In this example nothing outside
reads them either, so their messages are published and dropped: add a step subscribing to
one (say `video.completed`) and the message reaches it.
"""

config = {
    "type": "noop",
    "name": "ExternalConsumers",
    "description": "Consumers outside this app of the events it publishes",
    "virtualSubscribes": [
        "batch.completed",
        "cleanup.completed",
        "email.sent",
        "file.processed",
        "message.processed",
        "metrics.collected",
        "notification.send",
        "order.cancelled",
        "periodic-job-handled",
        "report.generated",
        "video.completed",
        "video.progress",
    ],
    "flows": ["jobs", "messages", "checkout", "scheduled"],
}
