"""The hello-world flow: GET /hello enqueues `process-greeting`, a worker stores the greeting."""
