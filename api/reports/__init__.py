"""Reports of the service."""
