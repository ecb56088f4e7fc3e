"""The embedded 2D world: a unicycle robot among polygons, judged against the truth."""
