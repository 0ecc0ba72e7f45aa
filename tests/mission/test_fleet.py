"""The vehicle registry and fleet files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlmodel import Session

from mission.errors import Conflict, NotFound
from mission.fleet import service as fleet
from mission.fleet.fleetfile import FleetFileError, load_fleet_file
from mission.fleet.models import Capability, VehicleCreate, VehicleUpdate


def _vehicle(name: str = "hawk-1", sysid: int = 1, **kw: object) -> VehicleCreate:
    base: dict[str, object] = {
        "name": name,
        "connection_url": f"udpin://0.0.0.0:{14540 + sysid}",
        "sysid": sysid,
        "home_lat": 39.82,
        "home_lon": 109.98,
    }
    return VehicleCreate.model_validate({**base, **kw})


def test_register_read_change_remove(session: Session) -> None:
    created = fleet.create(
        session=session,
        data=_vehicle(capabilities=["camera", "speaker"], payload_actuators={"speaker": 3}, battery_wh=220),
    )
    assert created.actuator_for("speaker") == 3 and created.actuator_for(Capability.spotlight) is None
    session.commit()
    changed = fleet.update(
        session=session,
        vehicle_id=created.id,
        data=VehicleUpdate(
            capabilities=[Capability.camera, Capability.speaker, Capability.spotlight],
            payload_actuators={Capability.speaker: 3, Capability.spotlight: 4},
        ),
    )
    assert changed.payload_actuators == {Capability.speaker: 3, Capability.spotlight: 4}
    assert changed.battery_wh == 220  # untouched fields stay
    assert fleet.get_by_sysid(session=session, sysid=1).id == created.id  # type: ignore[union-attr]
    items, total = fleet.list_vehicles(session=session, limit=10, offset=0)
    assert total == 1 and items[0].name == "hawk-1"
    fleet.delete(session=session, vehicle_id=created.id)
    with pytest.raises(NotFound, match=f"vehicle {created.id} does not exist"):
        fleet.get(session=session, vehicle_id=created.id)


def test_name_and_sysid_are_unique(session: Session) -> None:
    first = fleet.create(session=session, data=_vehicle("a", 1))
    other = fleet.create(session=session, data=_vehicle("b", 2))
    with pytest.raises(Conflict, match="'a' already exists"):
        fleet.create(session=session, data=_vehicle("a", 3))
    with pytest.raises(Conflict, match=re.escape("sysid 1 is already used on udpin://0.0.0.0:14541")):
        fleet.create(session=session, data=_vehicle("c", 1))
    with pytest.raises(Conflict, match="sysid 1 is already used"):
        fleet.update(
            session=session,
            vehicle_id=other.id,
            data=VehicleUpdate(sysid=1, connection_url="udpin://0.0.0.0:14541"),
        )
    # A sysid repeats on another connection (MAVLink has 253; a larger fleet needs that).
    again = fleet.update(session=session, vehicle_id=other.id, data=VehicleUpdate(sysid=1))
    assert (again.sysid, again.connection_url) == (1, "udpin://0.0.0.0:14542")
    # Renaming to its own name is not a clash.
    assert fleet.update(session=session, vehicle_id=first.id, data=VehicleUpdate(name="a")).name == "a"


def test_update_keeps_the_vehicle_valid(session: Session) -> None:
    v = fleet.create(
        session=session, data=_vehicle(capabilities=["speaker"], payload_actuators={"speaker": 1})
    )
    with pytest.raises(ValidationError, match="maps 'speaker' but capabilities do not include it"):
        fleet.update(session=session, vehicle_id=v.id, data=VehicleUpdate(capabilities=[]))
    with pytest.raises(ValidationError, match="name cannot be null"):
        VehicleUpdate.model_validate({"name": None})


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"connection_url": "http://x"}, "is not a MAVSDK URL"),
        ({"sysid": 0}, "greater than or equal to 1"),
        ({"home_lat": 91}, "less than or equal to 90"),
        ({"capabilities": ["laser"]}, "'camera', 'speaker' or 'spotlight'"),
        ({"capabilities": ["camera"], "payload_actuators": {"camera": 1}}, "not driven by an actuator"),
        ({"capabilities": ["speaker"], "payload_actuators": {"speaker": 9}}, "must be 1..6"),
        (
            {"capabilities": ["speaker", "spotlight"], "payload_actuators": {"speaker": 2, "spotlight": 2}},
            "share one actuator index",
        ),
        ({"cruise_speed_m_s": 0}, "greater than 0"),
        ({"wings": 2}, "Extra inputs are not permitted"),
    ],
)
def test_bad_vehicles_say_what_is_wrong(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as err:
        _vehicle(**fields)
    assert fragment in str(err.value)


FLEET_YAML = """
vehicles:
  - name: hawk-1
    connection_url: udpin://0.0.0.0:14540
    sysid: 1
    home_lat: 39.8371
    home_lon: 109.9352
    dock: Workstation Riverside
    capabilities: [camera, speaker]
    payload_actuators: {speaker: 1}
    cruise_speed_m_s: 12
    endurance_s: 1500
    battery_wh: 230
  - name: hawk-2
    connection_url: tcpout://10.0.0.5:5760
    sysid: 2
    home_lat: 39.8402
    home_lon: 109.9668
"""


def test_fleet_file_yaml_and_json_agree(tmp_path: Path) -> None:
    yaml_path = tmp_path / "fleet.yaml"
    yaml_path.write_text(FLEET_YAML)
    from_yaml = load_fleet_file(yaml_path)
    json_path = tmp_path / "fleet.json"
    json_path.write_text(json.dumps([v.model_dump(mode="json") for v in from_yaml]))
    assert load_fleet_file(json_path) == from_yaml
    assert [v.name for v in from_yaml] == ["hawk-1", "hawk-2"]
    assert from_yaml[0].payload_actuators == {Capability.speaker: 1}
    assert (from_yaml[0].endurance_s, from_yaml[0].battery_wh) == (1500, 230)


@pytest.mark.parametrize(
    ("text", "suffix", "fragment"),
    [
        (
            FLEET_YAML.replace("sysid: 2", "sysid: 300"),
            ".yaml",
            "vehicle #1 (hawk-2): sysid: Input should be",
        ),
        (
            FLEET_YAML.replace("sysid: 2", "sysid: 1").replace(
                "tcpout://10.0.0.5:5760", "udpin://0.0.0.0:14540"
            ),
            ".yaml",
            "vehicles #0 and #1 share sysid 1 on udpin://0.0.0.0:14540",
        ),
        ("vehicles: 3", ".yaml", "expected a list of vehicles"),
        ("{not json", ".json", "not valid JSON"),
        ("[]", ".toml", "must end in .yaml, .yml or .json"),
    ],
)
def test_bad_fleet_files_name_the_problem(tmp_path: Path, text: str, suffix: str, fragment: str) -> None:
    path = tmp_path / f"fleet{suffix}"
    path.write_text(text)
    with pytest.raises(FleetFileError) as err:
        load_fleet_file(path)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


def test_missing_fleet_file(tmp_path: Path) -> None:
    with pytest.raises(FleetFileError, match="cannot read fleet file"):
        load_fleet_file(tmp_path / "nope.yaml")


def test_upsert_by_name(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET_YAML)
    assert fleet.upsert_many(session=session, vehicles=load_fleet_file(path)) == (2, 0)
    path.write_text(FLEET_YAML.replace("battery_wh: 230", "battery_wh: 260"))
    assert fleet.upsert_many(session=session, vehicles=load_fleet_file(path)) == (0, 2)
    items, total = fleet.list_vehicles(session=session)
    assert total == 2 and items[0].battery_wh == 260
