"""Jobs of the service."""
