"""The Proposer: wraps a planner and publishes its candidates as Proposals. Never restarted."""
