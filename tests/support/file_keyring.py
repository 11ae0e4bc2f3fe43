"""A keyring backend for tests, loaded the way a user selects one (PYTHON_KEYRING_BACKEND=
file_keyring.FileKeyring, this directory on PYTHONPATH): values in the JSON file named by
TEST_KEYRING_FILE. It stands in for an OS keyring (Secret Service, Keychain), which needs a
desktop session this machine does not have; planeai talks to it through the keyring library
exactly as it would to a real one."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1

    def _path(self) -> Path:
        return Path(os.environ["TEST_KEYRING_FILE"])

    def _load(self) -> dict:
        try:
            return json.loads(self._path().read_text())
        except FileNotFoundError:
            return {}

    def get_password(self, service, username):
        return self._load().get(f"{service}\0{username}")

    def set_password(self, service, username, password):
        data = self._load()
        data[f"{service}\0{username}"] = password
        self._path().write_text(json.dumps(data))

    def delete_password(self, service, username):
        data = self._load()
        if data.pop(f"{service}\0{username}", None) is None:
            raise PasswordDeleteError("not set")
        self._path().write_text(json.dumps(data))
