"""Actions an agent takes from the sidebar that move money or documents (refunds first).

Each is planned from a fresh record (pure: what would happen and whether it may), checked
against the admin's policy, written to the audit trail before the upstream call and
completed after it, and safe to ask twice: the same request has the same idempotency key,
which the audit trail and the upstream both remember.
"""
