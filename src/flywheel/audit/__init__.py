"""The audit ledger: an append-only, hash-chained, signed record of what the robot was allowed to
do, under which Oracle version, and why."""
