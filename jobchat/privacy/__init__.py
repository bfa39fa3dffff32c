"""Privacy: the audit log, a candidate's export and erasure, and retention by age."""
