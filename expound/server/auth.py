"""Who is calling, and may they: authentication and the role check of every RPC.

The call guard (:func:`expound.server.errors.guarded`) calls :func:`admit` before the
handler runs. Authentication, in this order:

1. an ``authorization: Bearer <token>`` header: a static token (``exp_...``, checked against
   ``EXPOUND_TOKENS_FILE``) or a JWT (verified with PyJWT against the issuer's public key,
   with issuer, audience, expiry, not-before and the algorithms pinned). A header that is
   present but not valid is refused, never passed over for the certificate;
2. else, with mTLS, the client certificate's identity (:func:`tls.certificate_identity`);
3. else UNAUTHENTICATED.

Then the policy (:mod:`expound.server.policy`) gives the principal's roles (plus, when
``EXPOUND_JWT_ROLES_CLAIM`` is set, the policy's roles that the token's claim names), and the
RPC needs a role that grants it: else PERMISSION_DENIED. Both refusals tell the caller
nothing but the code and the request id; the reason is the error's cause, which the
call guard logs at WARNING.

Health checks (``grpc.health.v1.Health``) are open: standard probes carry no credentials and
learn only SERVING or NOT_SERVING. With authentication off (no client CA, no tokens, no JWT
key: loopback only, or ``EXPOUND_INSECURE``) every caller is ``anonymous`` with every role.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from expound.calling import (
    ANONYMOUS,
    own_records_only_var,
    principal_var,
    what_if_allowed_var,
)
from expound.errors import PermissionDenied, Unauthenticated
from expound.server import tls
from expound.server.policy import Access, Policy, load_policy, rpc_name
from expound.server.tokens import TOKEN_PREFIX, TokenFile
from expound.settings import Settings

log = logging.getLogger("expound.server")

HEALTH_PREFIX = "/grpc.health.v1.Health/"
# Asymmetric algorithms only: "none" and the HMAC family (which would take the issuer's
# public key as a shared secret) are refused at start-up.
ALLOWED_JWT_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class AccessRefusal(Exception):
    """Why a call was refused: the cause of its Unauthenticated or PermissionDenied, logged
    by the call guard and never sent."""


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its principal and roles."""

    principal: str
    roles: frozenset[str]


class JwtVerifier:
    """Verifies OIDC/JWT bearer tokens against one issuer's public key."""

    def __init__(self, settings: Settings, path: Path) -> None:
        """Loads the issuer's key from ``path`` and checks the pinned settings.

        Raises:
            ValueError: One line naming the setting that is missing or unsafe.
        """
        if not settings.jwt_issuer or not settings.jwt_audience:
            raise ValueError(
                "EXPOUND_JWT_PUBLIC_KEY_FILE needs EXPOUND_JWT_ISSUER and EXPOUND_JWT_AUDIENCE"
            )
        unsafe = sorted(set(settings.jwt_algorithms) - ALLOWED_JWT_ALGORITHMS)
        if unsafe or not settings.jwt_algorithms:
            raise ValueError(
                f"EXPOUND_JWT_ALGORITHMS: {unsafe or 'empty'} not allowed; "
                f"choose from {sorted(ALLOWED_JWT_ALGORITHMS)}"
            )
        try:
            self._key = serialization.load_pem_public_key(path.read_bytes())
        except OSError as error:
            raise ValueError(
                f"EXPOUND_JWT_PUBLIC_KEY_FILE {path}: cannot read: {error.strerror or error}"
            ) from error
        except (ValueError, TypeError) as error:
            raise ValueError(f"EXPOUND_JWT_PUBLIC_KEY_FILE {path}: not a PEM public key") from error
        families = _key_families(self._key)
        # Only the algorithms of the key's own family: a token naming another (RS256 on an
        # Ed25519 key) is refused as an algorithm mismatch, never tried with the wrong key.
        self._algorithms = [a for a in settings.jwt_algorithms if a.startswith(families)]
        if not self._algorithms:
            raise ValueError(
                f"EXPOUND_JWT_ALGORITHMS {settings.jwt_algorithms}: none verifies with the "
                f"{type(self._key).__name__} in EXPOUND_JWT_PUBLIC_KEY_FILE {path}"
            )
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._principal_claim = settings.jwt_principal_claim
        self._roles_claim = settings.jwt_roles_claim
        self._leeway = settings.jwt_leeway_s

    def verify(self, token: str) -> tuple[str, frozenset[str]]:
        """The principal and the claimed roles of a valid token.

        Raises:
            AccessRefusal: Naming the failed check (for the log only).
        """
        try:
            claims = jwt.decode(
                token,
                self._key,  # type: ignore[arg-type]  # any public key PyJWT supports
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", self._principal_claim]},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            # PyJWT's own errors, and any a malformed token raises in a key's verifier.
            raise AccessRefusal(f"JWT refused: {type(error).__name__}: {error}") from error
        principal = claims.get(self._principal_claim)
        if not isinstance(principal, str) or not principal:
            raise AccessRefusal(f"JWT claim {self._principal_claim!r} is not a non-empty string")
        claimed = claims.get(self._roles_claim, []) if self._roles_claim else []
        roles = (
            frozenset(r for r in claimed if isinstance(r, str))
            if isinstance(claimed, list)
            else frozenset()
        )
        return principal, roles


def _key_families(key: PublicKeyTypes) -> tuple[str, ...]:
    """The prefixes of the JWT algorithm names that verify with a key of this type."""
    if isinstance(key, rsa.RSAPublicKey):
        return ("RS", "PS")
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ("ES",)
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return ("EdDSA",)
    return ()


def authentication_enabled(settings: Settings) -> bool:
    """True when some credential is configured: mTLS, a tokens file or a JWT key."""
    return any((settings.tls_client_ca_file, settings.tokens_file, settings.jwt_public_key_file))


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


class AccessControl:
    """Authenticates each call and checks its RPC against the policy."""

    def __init__(
        self,
        policy: Policy,
        tokens: TokenFile | None = None,
        jwt_verifier: JwtVerifier | None = None,
        mtls: bool = False,
    ) -> None:
        self.policy = policy
        self._tokens = tokens
        self._jwt = jwt_verifier
        self._mtls = mtls

    def _bearer(self, header: str) -> Caller:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AccessRefusal("authorization header is not 'Bearer <token>'")
        if token.startswith(TOKEN_PREFIX) and self._tokens is not None:
            principal = self._tokens.principal_of(token)
            if principal is None:
                raise AccessRefusal("unknown or revoked static token")
            return Caller(principal, self.policy.roles_of(principal))
        if self._jwt is not None and token.count(".") == 2:
            principal, claimed = self._jwt.verify(token)
            return Caller(
                principal, self.policy.roles_of(principal) | (claimed & self.policy.roles)
            )
        raise AccessRefusal("bearer token of no configured kind")

    def authenticate(self, context: grpc.aio.ServicerContext) -> Caller:
        """The caller of ``context``.

        Raises:
            AccessRefusal: No valid credential.
        """
        headers = [v for k, v in context.invocation_metadata() or () if k == "authorization"]
        if len(headers) > 1:
            raise AccessRefusal("more than one authorization header")
        if headers:
            header = headers[0]
            return self._bearer(header if isinstance(header, str) else "")
        if self._mtls:
            pem = next(iter(context.auth_context().get("x509_pem_cert", ())), b"")
            try:
                principal = tls.certificate_identity(bytes(pem)) if pem else ""
            except (ValueError, x509.DuplicateExtension) as error:
                # The handshake's parser took a certificate of a trusted CA that
                # cryptography's stricter one refuses (e.g. a URI SAN that is not ASCII).
                raise AccessRefusal(f"client certificate cannot be read: {error}") from error
            if not principal:
                raise AccessRefusal("client certificate names no identity")
            return Caller(principal, self.policy.roles_of(principal))
        raise AccessRefusal("no credential")

    def authorize(
        self,
        method: str,
        context: grpc.aio.ServicerContext,
        on_principal: Callable[[str], object] | None = None,
    ) -> tuple[str, Access, bool]:
        """The principal of the call, its access to ``method``, and whether it may ask for
        what-if (unarchived) answers.

        ``on_principal`` is told the principal once it is authenticated, before its roles
        are checked.

        Raises:
            Unauthenticated: No valid credential.
            PermissionDenied: No role of the caller grants the RPC.
        """
        if method.startswith(HEALTH_PREFIX):
            return ANONYMOUS, Access.ALL, False
        # The reason rides on the error as its cause: the call guard logs it in the call's
        # one refusal line; the caller gets the code and the request id only.
        try:
            caller = self.authenticate(context)
        except AccessRefusal as refused:
            reason = AccessRefusal(f"{method}: {refused}; peer {context.peer()}")
            raise Unauthenticated() from reason
        if on_principal is not None:
            on_principal(caller.principal)
        rpc = rpc_name(method)
        access = self.policy.access(caller.roles, rpc) if rpc else Access.NONE
        if access is Access.NONE:
            reason = AccessRefusal(
                f"{method}: principal {caller.principal!r} roles {sorted(caller.roles)} "
                f"not allowed; peer {context.peer()}"
            )
            raise PermissionDenied() from reason
        return caller.principal, access, self.policy.what_if(caller.roles)


def admit(access: AccessControl | None, method: str, context: grpc.aio.ServicerContext) -> None:
    """Authorizes the call and sets its principal, record scope and what-if grant for the
    rest of it.

    The principal is set as soon as it is known, before the role check, so the refusal of
    an authenticated caller is logged and counted under its name. The call guard restores
    the variables when the call has been reported. With ``access`` None (authentication
    off) the principal stays ``anonymous``.

    Raises:
        Unauthenticated: No valid credential.
        PermissionDenied: No role of the caller grants the RPC.
    """
    if access is None:
        return
    principal, granted, what_if = access.authorize(method, context, on_principal=principal_var.set)
    principal_var.set(principal)
    own_records_only_var.set(granted is Access.OWN)
    what_if_allowed_var.set(what_if)


def build_access(settings: Settings) -> AccessControl | None:
    """The access control ``settings`` configure (None: authentication off).

    Raises:
        ValueError: One line naming the setting whose file or value cannot be used.
    """
    if not authentication_enabled(settings):
        return None
    policy = load_policy(settings.policy_file)
    tokens = TokenFile(settings.tokens_file) if settings.tokens_file else None
    key_file = settings.jwt_public_key_file
    verifier = JwtVerifier(settings, key_file) if key_file else None
    return AccessControl(policy, tokens, verifier, mtls=settings.tls_client_ca_file is not None)


def exposure_problem(settings: Settings, tls_on: bool) -> str | None:
    """Why serving on ``settings.host`` would be unsafe, or None.

    A non-loopback address needs TLS and authentication, unless ``EXPOUND_INSECURE`` says
    otherwise (then a WARNING is logged and None returned).
    """
    if is_loopback(settings.host) or (tls_on and authentication_enabled(settings)):
        return None
    missing = "TLS and authentication" if not tls_on else "authentication"
    if settings.insecure:
        log.warning(
            "serving on %s without %s (EXPOUND_INSECURE=true): anyone who reaches the port "
            "may read every record",
            settings.host,
            missing,
        )
        return None
    return (
        f"EXPOUND_HOST {settings.host} is not loopback and the server has no {missing}: set "
        "EXPOUND_TLS_CERT_FILE/EXPOUND_TLS_KEY_FILE and EXPOUND_TLS_CLIENT_CA_FILE, "
        "EXPOUND_TOKENS_FILE or EXPOUND_JWT_PUBLIC_KEY_FILE, or EXPOUND_INSECURE=true"
    )


def describe_security(settings: Settings) -> str:
    """One line for the start-up banner: transport, credentials, policy."""
    transport = "TLS" if settings.tls_cert_file else "plaintext"
    if settings.tls_client_ca_file:
        transport += " with client certificates (mTLS)"
    if not authentication_enabled(settings):
        return f"{transport}; authentication off (every caller is {ANONYMOUS}, every role)"
    kinds = [
        kind
        for kind, setting in (
            ("client certificates", settings.tls_client_ca_file),
            ("static tokens", settings.tokens_file),
            ("JWTs", settings.jwt_public_key_file),
        )
        if setting
    ]
    policy = settings.policy_file or "the default policy"
    return f"{transport}; principals from {', '.join(kinds)}; roles from {policy}"
