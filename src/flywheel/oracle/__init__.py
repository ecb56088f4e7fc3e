"""The Safety Oracle: scores proposals against a spec and returns raw signals; it never decides."""
