"""Topics this app is fed from outside: another service, a script or `motet emit` sends them.

A noop step runs nothing. It draws the sources in the flows graph and tells motet's start-time
checks that these topics are expected to arrive without a step of this app emitting them.
Try one: `motet emit user.registered '{"email": "ada@example.com", "name": "Ada"}'`.
"""

config = {
    "type": "noop",
    "name": "ExternalProducers",
    "description": "Sources outside this app: motet emit, Runtime.emit or another service",
    "virtualEmits": ["batch.process", "process-order", "report.requested", "user.registered"],
    "flows": ["jobs", "pet-store"],
}
