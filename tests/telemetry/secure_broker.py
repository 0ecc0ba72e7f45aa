"""A private Mosquitto that enforces the shipped production config: ``docker/mosquitto/mosquitto.conf``
with its password file and ``docker/mosquitto/acl``, only the paths and the port changed for the test."""

from __future__ import annotations

import contextlib
import getpass
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.telemetry.servers import PrivateMosquitto

DOCKER_MQTT = Path(__file__).resolve().parents[2] / "docker" / "mosquitto"


class SecuredMosquitto(PrivateMosquitto):
    """A PrivateMosquitto running the production config with ``users`` (name -> password)."""

    def __init__(self, users: dict[str, str]) -> None:
        super().__init__()
        self.users = dict(users)
        passwd = self._dir / "passwd"
        exe = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        for i, (name, password) in enumerate(users.items()):
            flags = ["-c"] if i == 0 else []
            subprocess.run([exe, *flags, "-b", str(passwd), name, password], check=True, capture_output=True)
        shutil.copy(DOCKER_MQTT / "acl", self._dir / "acl")
        conf = (DOCKER_MQTT / "mosquitto.conf").read_text()
        replacements = {
            r"^password_file .*$": f"password_file {passwd}",
            r"^acl_file .*$": f"acl_file {self._dir / 'acl'}",
            r"^listener 1883$": f"listener {self.port} 127.0.0.1",
            r"^persistence_location .*$": f"persistence_location {self._dir}/",
            r"^log_dest .*$": f"log_dest file {self._dir}/mosquitto.log",
        }
        for pattern, line in replacements.items():
            conf, count = re.subn(pattern, line, conf, flags=re.MULTILINE)
            assert count == 1, f"the shipped mosquitto.conf has no line {pattern!r}"
        # Started as root, mosquitto would drop to its own user, who cannot read this private temp dir.
        conf += f"user {getpass.getuser()}\n"
        (self._dir / "mosquitto.conf").write_text(conf)

    def url_for(self, user: str) -> str:
        """mqtt://user:password@127.0.0.1:port for one of the users."""
        return f"mqtt://{user}:{self.users[user]}@127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        path = self._dir / "mosquitto.log"
        return path.read_text() if path.exists() else ""


@contextlib.contextmanager
def secured_mosquitto(users: dict[str, str]) -> Iterator[SecuredMosquitto]:
    broker = SecuredMosquitto(users)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()
