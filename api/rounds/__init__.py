"""Rounds of the service."""
