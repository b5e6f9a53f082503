"""The access policy: principals -> roles -> RPCs, from one TOML file.

The file (``EXPOUND_POLICY_FILE``, default: ``policy.toml`` beside this module) is read once
at start-up and checked against the service descriptor, so a misspelt RPC or role is a
start-up error, not a silent denial. What it grants:

- ``Access.ALL``: the RPC on anything;
- ``Access.OWN``: a record read on the records the caller created only (the analyst's);
- ``Access.NONE``: refused (PERMISSION_DENIED), the default for any RPC no role names.

A role may also be granted ``what_if = true``: its Explain calls (unary or batch) may ask for
an answer that is not archived. Any other caller asking for one is refused
(PERMISSION_DENIED), so only exploration the policy allows escapes the legal record.

A caller with several roles gets the widest access any of them grants.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expound.v1 import explain_pb2

DEFAULT_POLICY = Path(__file__).with_name("policy.toml")
SERVICE = explain_pb2.DESCRIPTOR.services_by_name["ExplainService"]
# Full method name prefix of the service's RPCs, as gRPC hands it to the call guard.
METHOD_PREFIX = f"/{SERVICE.full_name}/"
RPCS = frozenset(method.name for method in SERVICE.methods)
# The record reads an ``own_records`` grant may name: each filters by the record's principal.
RECORD_READS = frozenset({"GetRecord", "ListRecords"})


class Access(enum.IntEnum):
    """What a role grants on one RPC, ordered from least to most."""

    NONE = 0
    OWN = 1
    ALL = 2


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Policy:
    """Roles per principal and access per role and RPC."""

    grants: Mapping[str, Mapping[str, Access]]  # role -> RPC name -> access
    principals: Mapping[str, frozenset[str]]  # principal -> roles
    what_if_roles: frozenset[str] = frozenset()  # roles whose explanations may go unarchived

    @property
    def roles(self) -> frozenset[str]:
        """Every role the policy defines."""
        return frozenset(self.grants)

    @property
    def named_rpcs(self) -> frozenset[str]:
        """The RPCs some role is granted."""
        return frozenset(rpc for grants in self.grants.values() for rpc in grants)

    def roles_of(self, principal: str) -> frozenset[str]:
        """The roles the policy gives ``principal`` (none when it is not listed)."""
        return self.principals.get(principal, frozenset())

    def access(self, roles: Iterable[str], rpc: str) -> Access:
        """The widest access any of ``roles`` has to ``rpc`` (short name, e.g. "Explain")."""
        return max(
            (self.grants.get(role, {}).get(rpc, Access.NONE) for role in roles),
            default=Access.NONE,
        )

    def what_if(self, roles: Iterable[str]) -> bool:
        """Whether any of ``roles`` may ask for what-if (unarchived) explanations."""
        return not self.what_if_roles.isdisjoint(roles)


def rpc_name(method: str) -> str | None:
    """The short RPC name of a full method name of the service, else None."""
    return method.removeprefix(METHOD_PREFIX) if method.startswith(METHOD_PREFIX) else None


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PolicyError(f"{where}: expected a list of names")
    return list(value)


def _role_grants(role: str, table: Any, where: str) -> dict[str, Access]:
    if not isinstance(table, dict):
        raise PolicyError(f"{where}: [roles.{role}] must be a table")
    unknown_keys = set(table) - {"rpcs", "own_records", "what_if"}
    if unknown_keys:
        raise PolicyError(f"{where}: [roles.{role}] has unknown keys {sorted(unknown_keys)}")
    grants: dict[str, Access] = {}
    for key, access in (("own_records", Access.OWN), ("rpcs", Access.ALL)):
        for rpc in _names(table.get(key, []), f"{where}: roles.{role}.{key}"):
            if rpc not in RPCS:
                raise PolicyError(
                    f"{where}: roles.{role}.{key} names {rpc!r}, not an RPC of {SERVICE.full_name}"
                )
            if access is Access.OWN and rpc not in RECORD_READS:
                raise PolicyError(
                    f"{where}: roles.{role}.own_records may name only {sorted(RECORD_READS)}"
                )
            grants[rpc] = max(grants.get(rpc, Access.NONE), access)
    return grants


def parse_policy(document: Mapping[str, Any], where: str) -> Policy:
    """A policy from a parsed TOML document; ``where`` names its source in errors.

    Raises:
        PolicyError: For an unknown key, RPC or role, or a value of the wrong shape.
    """
    unknown = set(document) - {"roles", "principals"}
    if unknown:
        raise PolicyError(f"{where}: unknown tables {sorted(unknown)}")
    roles = document.get("roles", {})
    if not isinstance(roles, dict) or not roles:
        raise PolicyError(f"{where}: no [roles.<name>] table")
    grants = {role: _role_grants(role, table, where) for role, table in roles.items()}
    what_if_roles: set[str] = set()
    for role, table in roles.items():
        flag = table.get("what_if", False)
        if not isinstance(flag, bool):
            raise PolicyError(f"{where}: roles.{role}.what_if must be true or false")
        if flag:
            if "Explain" not in grants[role] and "ExplainBatch" not in grants[role]:
                raise PolicyError(
                    f"{where}: roles.{role}.what_if needs Explain or ExplainBatch in its rpcs"
                )
            what_if_roles.add(role)
    principals: dict[str, frozenset[str]] = {}
    listed = document.get("principals", {})
    if not isinstance(listed, dict):
        raise PolicyError(f"{where}: [principals] must be a table")
    for principal, names in listed.items():
        given = _names(names, f"{where}: principals.{principal!r}")
        undefined = sorted(set(given) - set(grants))
        if undefined:
            raise PolicyError(
                f"{where}: principals.{principal!r} names undefined roles {undefined}"
            )
        principals[principal] = frozenset(given)
    return Policy(grants, principals, frozenset(what_if_roles))


def load_policy(path: Path | None) -> Policy:
    """The policy in ``path`` (None: the default shipped with the package).

    Raises:
        PolicyError: Naming ``EXPOUND_POLICY_FILE`` and the path, for a file that cannot be
            read, is not TOML, or does not describe a valid policy.
    """
    source = path or DEFAULT_POLICY
    where = f"EXPOUND_POLICY_FILE {source}"
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyError(f"{where}: cannot read: {error.strerror or error}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise PolicyError(f"{where}: not valid TOML: {error}") from error
    return parse_policy(document, where)
