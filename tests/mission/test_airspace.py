"""Zones: validation of shapes and bands, and which restrictions are active when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlmodel import Session

from flightplans.items import FenceCircle, FencePolygon
from mission.airspace import service as airspace
from mission.airspace.models import CircleShape, PolygonShape, ZoneCreate, ZoneKind
from mission.errors import Conflict, NotFound

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SQUARE = PolygonShape(
    type="Polygon", coordinates=[[(109.97, 39.81), (109.99, 39.81), (109.99, 39.83), (109.97, 39.83)]]
)


def _zone(name: str, kind: ZoneKind, **kw: object) -> ZoneCreate:
    return ZoneCreate(name=name, kind=kind, shape=kw.pop("shape", SQUARE), **kw)  # type: ignore[arg-type]


def test_active_window_decides_what_restricts(session: Session) -> None:
    airspace.create_zone(session=session, data=_zone("prison", ZoneKind.no_fly))
    airspace.create_zone(
        session=session,
        data=_zone(
            "stadium",
            ZoneKind.event,
            shape=CircleShape(type="Circle", center=(109.98, 39.80), radius_m=400),
            active_from=T0,
            active_until=T0 + timedelta(hours=4),
        ),
    )
    airspace.create_zone(session=session, data=_zone("patrol", ZoneKind.patrol, shape=SQUARE))
    session.commit()

    def names(at: datetime) -> list[str]:
        return [r.name for r in airspace.active_restrictions(session=session, at=at)]

    assert names(T0 - timedelta(seconds=1)) == ["prison"]
    assert names(T0) == ["prison", "stadium"]
    assert names(T0 + timedelta(hours=3, minutes=59)) == ["prison", "stadium"]
    assert names(T0 + timedelta(hours=4)) == ["prison"]  # the window is [from, until)
    # A naive time is taken as UTC; an offset time is converted.
    assert names(datetime(2026, 6, 1, 13, 0)) == ["prison", "stadium"]
    assert names(datetime(2026, 6, 1, 21, 0, tzinfo=UTC) - timedelta(hours=8)) == ["prison", "stadium"]


def test_restriction_volume_and_fence(session: Session) -> None:
    airspace.create_zone(session=session, data=_zone("low", ZoneKind.no_fly, floor_m=0, ceiling_m=100))
    airspace.create_zone(
        session=session,
        data=_zone(
            "ring", ZoneKind.no_fly, shape=CircleShape(type="Circle", center=(110.0, 39.85), radius_m=300)
        ),
    )
    session.commit()
    low, ring = airspace.active_restrictions(session=session, at=T0)
    assert low.contains(lat=39.82, lon=109.98, alt_m=50)
    assert not low.contains(lat=39.82, lon=109.98, alt_m=150)  # above the ceiling
    assert not low.contains(lat=39.84, lon=109.98, alt_m=50)  # outside
    # ~290 m north of the centre is inside the 300 m circle, ~320 m is not.
    assert ring.contains(lat=39.85 + 290 / 111_320, lon=110.0, alt_m=10)
    assert not ring.contains(lat=39.85 + 320 / 111_320, lon=110.0, alt_m=10)
    assert isinstance(low.fence_shape(), FencePolygon) and not low.fence_shape().inclusion
    assert low.fence_shape().points[0] == (39.81, 109.97)  # (lat, lon) for the link layer
    assert ring.fence_shape() == FenceCircle(lat=39.85, lon=110.0, radius_m=300, inclusion=False)


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1]]]}, "Self-intersection"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "at least 3 distinct"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [200, 1], [1, 0]]]}, "less than or equal to 180"),
        ({"type": "Circle", "center": [0, 0], "radius_m": -5}, "greater than 0"),
        ({"type": "Hexagon", "center": [0, 0]}, "does not match any of the expected tags"),
    ],
)
def test_bad_shapes_say_what_is_wrong(shape: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as err:
        ZoneCreate.model_validate({"name": "z", "kind": "no_fly", "shape": shape})
    assert fragment in str(err.value)


def test_bands_and_windows_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match=r"ceiling_m .* must be above floor_m"):
        _zone("z", ZoneKind.no_fly, floor_m=100, ceiling_m=50)
    with pytest.raises(ValidationError, match="active_until must be after active_from"):
        _zone("z", ZoneKind.event, active_from=T0, active_until=T0)


def test_crud_and_errors(session: Session) -> None:
    zone = airspace.create_zone(session=session, data=_zone("a", ZoneKind.patrol))
    with pytest.raises(Conflict, match="'a' already exists"):
        airspace.create_zone(session=session, data=_zone("a", ZoneKind.no_fly))
    replaced = airspace.replace_zone(
        session=session, zone_id=zone.id, data=_zone("b", ZoneKind.no_fly, ceiling_m=90)
    )
    assert (replaced.name, replaced.kind, replaced.ceiling_m) == ("b", ZoneKind.no_fly, 90)
    assert airspace.get_zone(session=session, zone_id=zone.id).name == "b"
    items, total = airspace.list_zones(session=session, limit=10, offset=0, kind=ZoneKind.no_fly)
    assert total == 1 and items[0].id == zone.id
    airspace.delete_zone(session=session, zone_id=zone.id)
    with pytest.raises(NotFound, match=f"zone {zone.id} does not exist"):
        airspace.get_zone(session=session, zone_id=zone.id)
