"""Map endpoints: which basemap to draw, and the road network as vector lines when there is none."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.deps import CurrentUser, SettingsDep
from api.errors import ERROR_RESPONSES, InvalidRequestError
from api.network import get_network
from geodata.geometry import roads_in_bbox

router = APIRouter(prefix="/map", tags=["map"], responses=ERROR_RESPONSES)

#: Largest box the road layer serves (degrees per side): about a district, not a country.
MAX_SPAN_DEG = 1.5


class MapConfig(BaseModel):
    """How pages draw the basemap: tiles when a tile server is configured, else our road lines."""

    tile_url: str | None
    attribution: str
    bbox: tuple[float, float, float, float]


def _parse_bbox(raw: str) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(x) for x in raw.split(","))
    except ValueError:
        msg = "bbox must be four numbers: west,south,east,north"
        raise InvalidRequestError(
            msg, errors=[{"column": "bbox", "value": raw, "reason": msg}]
        ) from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        msg = "bbox must have west < east and south < north, in degrees"
        raise InvalidRequestError(msg, errors=[{"column": "bbox", "value": raw, "reason": msg}])
    if east - west > MAX_SPAN_DEG or north - south > MAX_SPAN_DEG:
        msg = f"bbox is larger than {MAX_SPAN_DEG} degrees a side; zoom in"
        raise InvalidRequestError(msg, errors=[{"column": "bbox", "value": raw, "reason": msg}])
    return west, south, east, north


@router.get("/config", response_model=MapConfig)
async def map_config(settings: SettingsDep, _: CurrentUser) -> MapConfig:
    """Return the basemap setting (``COURIER_TILE_URL``) and the region's extent."""
    network = await run_in_threadpool(get_network, settings)
    bbox = tuple(round(v, 6) for v in network.graph.bbox())
    return MapConfig(
        tile_url=settings.tile_url,
        attribution=settings.tile_attribution,
        bbox=bbox,  # type: ignore[arg-type]
    )


@router.get("/roads")
def map_roads(
    settings: SettingsDep,
    _: CurrentUser,
    bbox: Annotated[str, Query(description="west,south,east,north in degrees")],
    max_edges: Annotated[int, Query(ge=1, le=50_000)] = 20_000,
) -> dict[str, Any]:
    """Return the roads in a box as GeoJSON lines, most important classes first when thinned."""
    box = _parse_bbox(bbox)
    return roads_in_bbox(get_network(settings).graph, box, max_edges=max_edges)
