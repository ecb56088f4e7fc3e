"""Enforcement: the Gate applies an explicit, versioned risk policy and fails closed."""
