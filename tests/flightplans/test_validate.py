"""validate_area and the small checks: every bad input gives a PlanningError that names the problem."""

from __future__ import annotations

import math
import warnings

import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from flightplans.errors import PlanningError
from flightplans.validate import check_finite_point, check_latlon, check_positive, validate_area

SQUARE = [(0, 0), (100, 0), (100, 100), (0, 100)]


def _poly_with_nan(value: float) -> Polygon:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return Polygon([(0, 0), (100, 0), (value, 100), (0, 100)])


def test_valid_area_is_returned_oriented() -> None:
    cw = Polygon(list(reversed(SQUARE)), [[(10, 10), (20, 10), (20, 20), (10, 20)]])
    out = validate_area(cw)
    assert out.exterior.is_ccw
    assert not out.interiors[0].is_ccw
    assert out.area == pytest.approx(100 * 100 - 100)


@pytest.mark.parametrize(
    ("area", "message"),
    [
        (
            Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]),
            r"area is invalid: self-intersection at \(5\.00, 5\.00\)",
        ),
        (Polygon(SQUARE, [[(200, 200), (210, 200), (210, 210)]]), r"hole 0 lies outside the exterior"),
        (Polygon(SQUARE, [[(-10, 40), (-10, 60), (30, 60), (30, 40)]]), r"hole 0 crosses the exterior"),
        (
            Polygon(SQUARE, [[(0, 50), (30, 40), (30, 60)]]),
            r"hole 0 touches the exterior at \(0\.00, 50\.00\)",
        ),
        (Polygon(SQUARE, [[(0, 40), (0, 60), (30, 60), (30, 40)]]), r"hole 0 touches the exterior"),
        (
            Polygon(
                SQUARE, [[(10, 10), (40, 10), (40, 40), (10, 40)], [(20, 20), (50, 20), (50, 50), (20, 50)]]
            ),
            r"holes 0 and 1 overlap",
        ),
        (Polygon(), r"area is empty"),
        (Polygon([(0, 0), (10, 0), (20, 0)]), r"area is invalid"),
        (box(0, 0, 20_000, 20_000), r"400\.0 km\^2, over the 100 km\^2 limit"),
        (MultiPolygon([box(0, 0, 1, 1), box(5, 5, 6, 6)]), r"must be a shapely Polygon, got MultiPolygon"),
        ("not a polygon", r"must be a shapely Polygon, got str"),
    ],
)
def test_bad_areas_name_the_problem(area: object, message: str) -> None:
    with pytest.raises(PlanningError, match=message):
        validate_area(area)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_coordinates_are_rejected(value: float) -> None:
    with pytest.raises(PlanningError, match=r"non-finite \(NaN/inf\) coordinate") as err:
        validate_area(_poly_with_nan(value))
    assert err.value.where is not None


def test_where_points_at_the_problem() -> None:
    with pytest.raises(PlanningError) as err:
        validate_area(Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]), name="survey")
    assert err.value.where == (5.0, 5.0)
    assert str(err.value).startswith("survey is invalid")


def test_area_smaller_than_swath() -> None:
    with pytest.raises(PlanningError, match=r"smaller than the swath: it spans 15\.0 m, less than 20 m"):
        validate_area(box(0, 0, 15, 10), min_size_m=20)
    # a long narrow strip is still flyable in one pass
    assert validate_area(box(0, 0, 300, 10), min_size_m=20).area == pytest.approx(3000)


def test_custom_area_limit() -> None:
    with pytest.raises(PlanningError, match=r"over the 1 km\^2 limit"):
        validate_area(box(0, 0, 2000, 1000), max_area_m2=1e6)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, r"swath_m must be positive, got 0\.0"),
        (-5, r"swath_m must be positive"),
        (math.nan, r"swath_m must be finite"),
        (math.inf, r"swath_m must be finite"),
        ("30", r"swath_m must be a number"),
        (True, r"swath_m must be a number"),
    ],
)
def test_check_positive_rejects(value: object, message: str) -> None:
    with pytest.raises(PlanningError, match=message):
        check_positive("swath_m", value)


def test_check_positive_accepts() -> None:
    assert check_positive("swath_m", 25) == 25.0


def test_check_finite_point() -> None:
    assert check_finite_point("start", 3, -4.5) == (3.0, -4.5)
    with pytest.raises(PlanningError, match=r"start: y must be finite"):
        check_finite_point("start", 0, math.nan)
    with pytest.raises(PlanningError, match=r"start: x must be a number"):
        check_finite_point("start", None, 0)


def test_check_latlon() -> None:
    assert check_latlon(39.82, 109.98) == (39.82, 109.98)
    with pytest.raises(
        PlanningError, match=r"latitude 109\.98 is outside \[-90, 90\] \(are lat and lon swapped\?\)"
    ):
        check_latlon(109.98, 39.82)
    with pytest.raises(PlanningError, match=r"longitude 190\.0 is outside"):
        check_latlon(10, 190)
    with pytest.raises(PlanningError, match=r"must be finite"):
        check_latlon(math.nan, 0)
