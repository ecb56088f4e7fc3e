"""Signed Oracle releases: python-tuf metadata over the Oracle spec, verified before any use."""
