"""Auth of the service."""
