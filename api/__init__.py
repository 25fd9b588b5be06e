"""Everything people and programs talk to: the command line, and later the web service."""
