"""The pages people use: dispatcher, courier and manager, served as HTML shells with small scripts.

Pages carry no data: they are public shells that load everything from the API with the user's
token, so the same role checks guard the pages and other tools. Front-end libraries come from
registry packages (Leaflet from ``xstatic-leaflet``), never from a CDN.
"""
