"""qcn models package."""
