"""The pet store: a REST API over state "pets" plus the background jobs it triggers."""
