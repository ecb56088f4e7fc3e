"""Online verification: an independent, more expensive second opinion on one proposal."""
