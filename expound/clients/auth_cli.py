"""``expound auth ...``: issue bearer tokens, and the options every dialing command takes.

``expound auth token --principal NAME`` prints a new token (give it to the client, once) and
the line that lets it in (add it to ``EXPOUND_TOKENS_FILE``, or pass ``--tokens-file`` to
append it there, created 0600). The server keeps only the token's SHA-256.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from expound.clients.client import ChannelSecurity
from expound.server.tokens import new_token, token_line
from expound.settings import ClientSettings


def add_security_options(parser: argparse.ArgumentParser) -> None:
    """``--tls-ca``, ``--cert``, ``--key``, ``--token``, ``--tls-server-name`` (environment:
    EXPOUND_TLS_CA, ...)."""
    group = parser.add_argument_group("security (default: the EXPOUND_* variable named)")
    group.add_argument(
        "--tls-ca",
        type=Path,
        help="CA bundle of the server's certificate; turns TLS on (EXPOUND_TLS_CA)",
    )
    group.add_argument("--cert", type=Path, help="client certificate, mTLS (EXPOUND_CLIENT_CERT)")
    group.add_argument("--key", type=Path, help="its private key (EXPOUND_CLIENT_KEY)")
    group.add_argument("--token", help="bearer token: static or JWT (EXPOUND_TOKEN)")
    group.add_argument(
        "--tls-server-name",
        help="the name in the server's certificate, when the target's host is another "
        "(an IP address, a tunnel) (EXPOUND_TLS_SERVER_NAME)",
    )


def security_from(args: argparse.Namespace) -> ChannelSecurity:
    """The channel security the options ask for, the environment filling the gaps."""
    env = ClientSettings()
    return ChannelSecurity(
        tls_ca=args.tls_ca or env.tls_ca,
        cert=args.cert or env.client_cert,
        key=args.key or env.client_key,
        token=args.token or env.token,
        server_name=args.tls_server_name or env.tls_server_name,
    )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``auth`` and its actions to the command line."""
    auth = commands.add_parser("auth", help="issue bearer tokens")
    actions = auth.add_subparsers(dest="action", required=True)
    token = actions.add_parser("token", help="make a token and print the line that lets it in")
    token.add_argument("--principal", required=True, help="who the token authenticates")
    token.add_argument(
        "--tokens-file", type=Path, help="append the line to this file (created 0600)"
    )


def _append(path: Path, line: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as out:
        out.write(line + "\n")


def run(args: argparse.Namespace) -> int:
    """Runs one ``auth`` action; returns the exit status.

    Raises:
        ValueError: A principal that is not one word, or a file that cannot be written.
    """
    token = new_token()
    line = token_line(args.principal, token)
    if args.tokens_file is not None:
        try:
            _append(args.tokens_file, line)
        except OSError as error:
            raise ValueError(f"--tokens-file {args.tokens_file}: {error.strerror}") from error
        where = f"appended to {args.tokens_file}"
    else:
        where = "add this line to EXPOUND_TOKENS_FILE:\n" + line
    print(f"token for {args.principal} (shown once; give it to the client as EXPOUND_TOKEN):")
    print(token)
    print(where)
    return 0
