"""qcn app package."""
