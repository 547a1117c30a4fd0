"""OAuth 2.0 for the Google emulator: the token endpoint, access tokens and scope checks.

Two grants, as google-auth sends them (form-encoded POST to ``token_uri``):
- ``refresh_token`` (google.oauth2.credentials.Credentials): client_id, client_secret,
  refresh_token, optional scope;
- ``urn:ietf:params:oauth:grant-type:jwt-bearer`` (google.oauth2.service_account with
  ``subject=``): an RS256 JWT signed with the service account's key, ``iss`` = client_email,
  ``sub`` = the impersonated user, ``scope``, ``aud``.

google-auth stamps the JWT and computes token expiry with the real clock, so JWT checks
and access-token lifetimes use wall time, not the emulator's simulated clock.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox.google.wire import ApiError

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"   # the ``aud`` google-auth always signs
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME = 3599
JWT_MAX_LIFETIME = 3600
CLOCK_SKEW = 300
PROJECT = "dealsync-sandbox"

_AUTH = "https://www.googleapis.com/auth/"
GMAIL_FULL = frozenset({"https://mail.google.com/", _AUTH + "gmail.modify", _AUTH + "gmail.readonly"})
GMAIL_METADATA = _AUTH + "gmail.metadata"
GMAIL_READ = GMAIL_FULL | {GMAIL_METADATA}
CALENDAR_READ = frozenset(_AUTH + s for s in ("calendar", "calendar.readonly", "calendar.events",
                                                "calendar.events.readonly", "calendar.events.owned",
                                                "calendar.events.owned.readonly"))
CALENDAR_WRITE = frozenset(_AUTH + s for s in ("calendar", "calendar.events", "calendar.events.owned"))
CALENDAR_LIST = frozenset(_AUTH + s for s in ("calendar", "calendar.readonly", "calendar.calendarlist",
                                                "calendar.calendarlist.readonly"))
DEFAULT_USER_SCOPES = frozenset({_AUTH + "gmail.readonly", _AUTH + "calendar"})


class OAuthError(Exception):
    """A token-endpoint failure, rendered as ``{"error", "error_description"}``."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def payload(self) -> dict:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class Principal:
    user: str                   # the mailbox / calendar owner the token acts as
    scopes: frozenset[str]
    via: str                    # "oauth_client" | "service_account"


@dataclass
class _ServiceAccount:
    email: str
    client_id: str
    key_id: str
    public_key: rsa.RSAPublicKey
    scopes: frozenset[str] | None        # domain-wide delegation grant; None = any scope


@dataclass
class _OAuthClient:
    client_id: str
    secret: str
    user: str
    scopes: frozenset[str]


class Auth:
    def __init__(self, token_uri: Callable[[], str], known_user: Callable[[str], bool]):
        self._token_uri = token_uri           # the emulator's URL is known only once it listens
        self._known_user = known_user
        self._lock = threading.Lock()
        self._accounts: dict[str, _ServiceAccount] = {}
        self.revoked_keys: set[str] = set()       # deleted service-account keys (sandbox switch)
        self._clients: dict[str, _OAuthClient] = {}
        self._refresh_tokens: dict[str, str] = {}        # refresh token -> client_id
        self._access: dict[str, tuple[Principal, float]] = {}

    # ----------------------------------------------------------------- registration

    def register_service_account(self, scopes=None) -> dict:
        """A service-account JSON key with domain-wide delegation, as the Cloud console hands out."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        n = len(self._accounts) + 1
        account = _ServiceAccount(email=f"dealsync-sync-{n}@{PROJECT}.iam.gserviceaccount.com",
                                  client_id=str(10**20 + secrets.randbelow(10**20)), key_id=secrets.token_hex(20),
                                  public_key=key.public_key(), scopes=frozenset(scopes) if scopes else None)
        with self._lock:
            self._accounts[account.email] = account
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": PROJECT, "private_key_id": account.key_id,
                "private_key": pem, "client_email": account.email, "client_id": account.client_id,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": self._token_uri(),
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
                                        + account.email.replace("@", "%40"),
                "universe_domain": "googleapis.com"}

    def register_oauth_client(self, user: str, scopes=None) -> dict:
        """An installed-app client plus a refresh token the user granted ``scopes`` to."""
        client = _OAuthClient(client_id=f"{secrets.randbelow(10**12):012d}-{secrets.token_hex(16)}"
                                        ".apps.googleusercontent.com",
                              secret="GOCSPX-" + secrets.token_urlsafe(21), user=user,
                              scopes=frozenset(scopes) if scopes else DEFAULT_USER_SCOPES)
        refresh_token = "1//0" + secrets.token_urlsafe(60)
        with self._lock:
            self._clients[client.client_id] = client
            self._refresh_tokens[refresh_token] = client.client_id
        return {"client_id": client.client_id, "client_secret": client.secret, "refresh_token": refresh_token,
                "token_uri": self._token_uri(), "scopes": sorted(client.scopes)}

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._refresh_tokens.pop(refresh_token, None)

    def expire_tokens(self) -> None:
        with self._lock:
            self._access.clear()

    # ----------------------------------------------------------------- API calls

    def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if not token or scheme.lower() != "bearer":
            raise _unauthenticated("Request is missing required authentication credential. Expected OAuth 2 "
                                   "access token, login cookie or other valid authentication credential.",
                                   "required", "Login Required.")
        with self._lock:
            found = self._access.get(token.strip())
        if found is None or found[1] < time.time():
            raise _unauthenticated("Request had invalid authentication credentials. Expected OAuth 2 access "
                                   "token, login cookie or other valid authentication credential.",
                                   "authError", "Invalid Credentials")
        return found[0]

    # ----------------------------------------------------------------- token endpoint

    def token(self, body: bytes, content_type: str) -> tuple[dict, Principal]:
        """Handle POST /token; returns the success payload or raises OAuthError."""
        form = _form(body, content_type)
        grant = form.get("grant_type")
        if grant == "refresh_token":
            principal = self._refresh_grant(form)
        elif grant == JWT_GRANT:
            principal = self._jwt_grant(form.get("assertion") or "")
        else:
            raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant or ''}")
        access_token = "ya29.sandbox-" + secrets.token_urlsafe(48)
        with self._lock:
            self._access[access_token] = (principal, time.time() + TOKEN_LIFETIME)
        payload = {"access_token": access_token, "expires_in": TOKEN_LIFETIME,
                   "scope": " ".join(sorted(principal.scopes)), "token_type": "Bearer"}
        return payload, principal

    def _refresh_grant(self, form: dict) -> Principal:
        with self._lock:
            client = self._clients.get(form.get("client_id") or "")
            owner = self._refresh_tokens.get(form.get("refresh_token") or "")
        if client is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if not secrets.compare_digest((form.get("client_secret") or "").encode(), client.secret.encode()):
            raise OAuthError(401, "invalid_client", "Unauthorized")
        if owner != client.client_id:
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        scopes = client.scopes
        if form.get("scope"):
            requested = frozenset(form["scope"].split())
            if not requested <= client.scopes:          # refresh may narrow the grant, never widen it
                raise OAuthError(400, "invalid_scope", "Some requested scopes were invalid. "
                                 f"{{invalid={sorted(requested - client.scopes)}}}")
            scopes = requested
        return Principal(client.user, scopes, "oauth_client")

    def _jwt_grant(self, assertion: str) -> Principal:
        claims, account = self._verify_jwt(assertion)
        scopes = frozenset((claims.get("scope") or "").split())
        if not scopes:
            raise OAuthError(400, "invalid_scope", "Empty or missing scope not allowed.")
        subject = claims.get("sub")
        if not subject or subject == account.email:
            return Principal(account.email, scopes, "service_account")
        if account.scopes is not None and not scopes <= account.scopes:
            raise OAuthError(401, "unauthorized_client", "Client is unauthorized to retrieve access tokens using "
                             "this method, or client not authorized for any of the scopes requested.")
        if not self._known_user(subject):
            raise OAuthError(400, "invalid_grant", "Invalid email or User ID")
        return Principal(subject, scopes, "service_account")

    def _verify_jwt(self, assertion: str) -> tuple[dict, _ServiceAccount]:
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            header, claims = json.loads(_unb64(head_b64)), json.loads(_unb64(claims_b64))
            signature = _unb64(sig_b64)
        except (ValueError, binascii.Error):
            raise OAuthError(400, "invalid_grant", "Invalid JWT: could not be decoded.") from None
        with self._lock:
            account = self._accounts.get(claims.get("iss") or "")
        if account is None:
            raise OAuthError(400, "invalid_grant", "Invalid grant: account not found")
        if account.key_id in self.revoked_keys:       # what Google answers for a deleted key
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        if header.get("alg") != "RS256" or header.get("kid", account.key_id) != account.key_id:
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            account.public_key.verify(signature, f"{head_b64}.{claims_b64}".encode(), padding.PKCS1v15(),
                                      hashes.SHA256())
        except InvalidSignature:
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.") from None
        if claims.get("aud") not in (GOOGLE_TOKEN_URI, self._token_uri()):
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Failed audience check.")
        _check_lifetime(claims)
        return claims, account


def _check_lifetime(claims: dict) -> None:
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if (not isinstance(iat, (int, float)) or not isinstance(exp, (int, float)) or exp - iat > JWT_MAX_LIFETIME
            or iat > now + CLOCK_SKEW or exp < now - CLOCK_SKEW):
        raise OAuthError(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in "
                         "a reasonable timeframe. Check your iat and exp values in the JWT claim.")


def require_scope(principal: Principal, allowed: frozenset[str]) -> None:
    if principal.scopes.isdisjoint(allowed):
        raise ApiError(403, "insufficientPermissions", "Request had insufficient authentication scopes.",
                       domain="global")


def _unauthenticated(message: str, reason: str, item_message: str) -> ApiError:
    return ApiError(401, reason, message, location=("header", "Authorization"), item_message=item_message,
                    headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'})


def _form(body: bytes, content_type: str) -> dict[str, str]:
    text = body.decode("utf-8", "replace")
    if "json" in (content_type or ""):
        try:
            data = json.loads(text or "{}")
        except ValueError:
            return {}
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(text).items()}


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
