"""Services: one short session per operation, plain objects out, an audit entry for every change."""
