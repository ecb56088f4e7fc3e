"""Governance agents: pure logic that turns incidents and found flaws into the next candidate
Oracle release (monitor, red team, triage, refiner, blue team). No agent signs or promotes."""
