"""Tiny OSM extracts written by the tests themselves (XML, bz2 and PBF)."""

from __future__ import annotations

import bz2
from pathlib import Path

# A street corner in Kon Tum town, about 100 m between nodes along 14.35 N.
NODES = {
    1: (108.0000, 14.3500),
    2: (108.0010, 14.3500),
    3: (108.0020, 14.3500),
    4: (108.0020, 14.3510),
    5: (108.0010, 14.3510),
    6: (108.0000, 14.3510),
    7: (108.0030, 14.3500),
    8: (108.0030, 14.3510),
    9: (108.0040, 14.3500),
}
# way id -> (node refs, tags)
WAYS: dict[int, tuple[list[int], dict[str, str]]] = {
    # Lê Lợi: one-way for cars, both ways for motorbikes
    101: (
        [1, 2, 3],
        {"highway": "residential", "name": "Lê Lợi", "oneway": "yes", "oneway:motorcycle": "no"},
    ),
    # an alley closed to cars
    102: ([3, 4], {"highway": "service", "service": "alley", "motorcar": "no"}),
    # a path open to motorbikes
    103: ([4, 5], {"highway": "path", "motorcycle": "yes"}),
    # a plain two-way street
    104: ([5, 6, 1], {"highway": "tertiary", "name": "Bà Triệu", "surface": "asphalt"}),
    # an expressway: no motorbikes
    105: ([3, 7], {"highway": "motorway", "name": "Cao tốc"}),
    # a street closed to motorcycles
    106: ([4, 8], {"highway": "residential", "motorcycle": "no"}),
    # an unpaved track
    107: ([7, 9], {"highway": "track", "surface": "dirt"}),
    # a clipped way: node 99 is not in the file
    108: ([8, 99, 9], {"highway": "residential", "name": "cut by the clip"}),
}


def osm_xml(
    nodes: dict[int, tuple[float, float]] = NODES,
    ways: dict[int, tuple[list[int], dict[str, str]]] = WAYS,
) -> str:
    """Return an OSM XML document with these nodes and ways."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<osm version="0.6" generator="courier-routing tests">',
    ]
    for nid, (lon, lat) in nodes.items():
        lines.append(f'  <node id="{nid}" version="1" lat="{lat}" lon="{lon}"/>')
    for wid, (refs, tags) in ways.items():
        lines.append(f'  <way id="{wid}" version="1">')
        lines += [f'    <nd ref="{r}"/>' for r in refs]
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    return "\n".join(lines)


def write_osm(folder: Path, kind: str = "osm") -> Path:
    """Write the fixture as ``.osm``, ``.osm.bz2`` or ``.osm.pbf`` and return the path."""
    text = osm_xml()
    if kind == "osm":
        path = folder / "corner.osm"
        path.write_text(text, encoding="utf-8")
    elif kind == "bz2":
        path = folder / "corner.osm.bz2"
        path.write_bytes(bz2.compress(text.encode("utf-8")))
    elif kind == "pbf":
        import osmium

        src = folder / "corner-src.osm"
        src.write_text(text, encoding="utf-8")
        path = folder / "corner.osm.pbf"
        with osmium.SimpleWriter(str(path)) as writer:
            for obj in osmium.FileProcessor(str(src)):
                if obj.is_node():
                    writer.add_node(obj)
                elif obj.is_way():
                    writer.add_way(obj)
    else:
        raise ValueError(kind)
    return path
