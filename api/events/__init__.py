"""Events of the service."""
