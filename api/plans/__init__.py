"""Plans of the service."""
