"""Scheduled work: a job every minute, and a batch processor over state every 6 hours."""
