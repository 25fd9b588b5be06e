"""Road networks for courier rounds: OpenStreetMap graphs, vehicle profiles, travel-time matrices, zones."""
