"""Closing a day: outcomes of its jobs, carry-over to the next working day, offices ' rules."""
