"""Every retention rule in one place: what personal data is deleted, when, and by whom.

`retention.purge_personal_data` deletes callers' details past their retention (with the .eml
copies of their emails) and expired idempotency keys; `handoff purge` runs it, and the outbox
worker is handed it as a periodic job (`jobs.housekeeping_jobs`) by app.wiring.
"""
