"""The release decision: each lot's attributes judged against its specification, its dose, the
inputs checked again, the audit trail and the 24-hour timeline."""
