"""The message pipeline: POST /messages -> ProcessMessage (retries, dead letters) ->
state "messages" -> NotifyCompletion (state trigger), plus a nightly cleanup."""
