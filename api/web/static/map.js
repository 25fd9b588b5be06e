// A Leaflet map for the pages: tiles when COURIER_TILE_URL is set and the device is online,
// otherwise (and underneath, while tiles load) the road network drawn from our own graph.
// Needs /static/vendor/leaflet/leaflet.js and common.js loaded first.
"use strict";

CR.map = (() => {
  const ROAD_STYLE = {
    trunk: { color: "#c0392b", weight: 4 },
    primary: { color: "#d35400", weight: 3.5 },
    secondary: { color: "#e67e22", weight: 3 },
    tertiary: { color: "#7f8c8d", weight: 2.5 },
  };
  const ROAD_DEFAULT = { color: "#95a5a6", weight: 1.5 };

  let configPromise = null;
  /** The basemap setting and the region's extent, fetched once per page. */
  function config() {
    configPromise ??= CR.api("/map/config");
    return configPromise;
  }

  function roadStyle(feature) {
    const cls = (feature.properties.highway || "").replace("_link", "");
    return { ...(ROAD_STYLE[cls] || ROAD_DEFAULT), opacity: 0.8 };
  }

  /**
   * Fetch the roads in `bounds` (a Leaflet LatLngBounds) as GeoJSON. Boxes larger than the
   * server allows are shrunk around their centre; the server thins minor roads in big boxes.
   */
  async function fetchRoads(bounds, maxEdges = 20000) {
    const maxSpan = 1.4;
    const c = bounds.getCenter();
    const halfLon = Math.min((bounds.getEast() - bounds.getWest()) / 2, maxSpan / 2);
    const halfLat = Math.min((bounds.getNorth() - bounds.getSouth()) / 2, maxSpan / 2);
    const box = [c.lng - halfLon, c.lat - halfLat, c.lng + halfLon, c.lat + halfLat]
      .map((v) => v.toFixed(5)).join(",");
    return CR.api(`/map/roads?bbox=${box}&max_edges=${maxEdges}`);
  }

  /**
   * Create a map in element `id`. Returns {map, roads, showRoadsAround(bounds)}: the roads
   * layer is filled for the given bounds (the rounds' extent, say), once per call.
   */
  async function create(id, options = {}) {
    const map = L.map(id, { zoomControl: true, preferCanvas: true, ...options });
    const cfg = await config().catch(() => null);
    const roads = L.geoJSON(null, { style: roadStyle, interactive: false }).addTo(map);
    const layers = {};
    layers[CR.t("common.roads_layer")] = roads;
    if (cfg?.tile_url && navigator.onLine) {
      const tiles = L.tileLayer(cfg.tile_url, { attribution: cfg.attribution, maxZoom: 19 });
      tiles.addTo(map);
      layers.OSM = tiles;
    }
    L.control.layers(null, layers, { collapsed: true }).addTo(map);
    if (cfg?.bbox) {
      const [w, s, e, n] = cfg.bbox;
      map.fitBounds([[s, w], [n, e]]);
    } else {
      map.setView([14.35, 108.0], 12);
    }

    async function showRoadsAround(bounds, maxEdges) {
      const data = await fetchRoads(bounds.pad(0.15), maxEdges);
      roads.clearLayers();
      roads.addData(data);
      return data;
    }
    return { map, roads, showRoadsAround };
  }

  return { create, config, fetchRoads };
})();
