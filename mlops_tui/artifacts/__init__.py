"""Content-addressed weights and code snapshots: written atomically, verified before use."""
