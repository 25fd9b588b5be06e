"""Map data for the pages: the basemap setting and road lines from our own graph."""
