"""Credentials by environment-variable reference.

A config file never holds a secret, only the *name* of the environment variable
that does. The value is read at the moment a client is built and kept in a
`SecretStr`, so it never reaches a log line, an error message or the warehouse.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import Field, SecretStr

# An env-var name, not a value: the pattern keeps a pasted password from being
# accepted (and later echoed) as a "name".
EnvVarName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]


class MissingSecret(RuntimeError):
    """An environment variable named in the config is not set."""


def read_secret(env_var: str, purpose: str) -> SecretStr:
    value = os.environ.get(env_var)
    if not value:
        raise MissingSecret(f"environment variable {env_var} ({purpose}) is not set")
    return SecretStr(value)
