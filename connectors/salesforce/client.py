"""Build a simple-salesforce client from `SalesforceSettings`, and translate its failures.

The client is the vendor's own, unchanged; we only hand it a `requests.Session`
that (a) trusts the configured CA bundle, (b) puts a timeout on every call so a
dead server cannot hang a sync, and (c) sends SOAP login to `login_url` when that
is not a salesforce.com host (the local emulator, a proxy).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

from connectors.errors import SourceRejected, SourceUnreachable, StreamRefused
from connectors.http import retry_policy
from connectors.salesforce.settings import SalesforceSettings
from connectors.secrets import read_secret

VENDOR = "salesforce"
_DEFAULT_LOGIN = "https://login.salesforce.com"


class _Session(requests.Session):
    def __init__(self, settings: SalesforceSettings, login_base: str, login_rewrite: str | None):
        super().__init__()
        self._timeout = settings.timeout_seconds
        self._attempts = settings.retry.attempts
        self._login_rewrite = login_rewrite
        self._soap = f"{login_rewrite or login_base}/services/Soap/"
        if settings.ca_bundle:
            # REQUESTS_CA_BUNDLE in the environment would otherwise override `verify`.
            self.trust_env = False
            self.verify = str(settings.ca_bundle)
        self.mount("https://", HTTPAdapter(max_retries=retry_policy(settings.retry)))
        # SOAP login may be sent again (a second login only opens a second session), but not
        # on a 500: that is Salesforce's answer to a wrong password.
        self.mount(self._soap, HTTPAdapter(max_retries=retry_policy(settings.retry, retry_posts=True,
                                                                   statuses=(429, 502, 503, 504))))

    def request(self, method, url, *args, **kwargs):
        if self._login_rewrite and url.startswith(_DEFAULT_LOGIN):
            url = self._login_rewrite + url[len(_DEFAULT_LOGIN):]
        kwargs.setdefault("timeout", self._timeout)
        for attempt in range(self._attempts + 1):
            try:
                return super().request(method, url, *args, **kwargs)
            except requests.exceptions.ChunkedEncodingError:
                # An answer cut off mid-body: urllib3's retries end with the headers, so read
                # calls (and login) are sent again here.
                if attempt == self._attempts or not (method == "GET" or url.startswith(self._soap)):
                    raise


def _login_domain(login_url: str) -> tuple[str, str | None]:
    """simple-salesforce's `domain` for the login host, and a rewrite target if it is not salesforce.com."""
    host = urlsplit(login_url).hostname or ""
    if host.endswith(".salesforce.com"):
        return host.removesuffix(".salesforce.com"), None
    return "login", login_url.rstrip("/")


def connect(settings: SalesforceSettings) -> Salesforce:
    """A logged-in client. Raises SourceUnreachable / SourceRejected with a clear message."""
    domain, rewrite = _login_domain(str(settings.login_url))
    session = _Session(settings, f"https://{domain}.salesforce.com", rewrite)
    with translate_errors(stream=None, url=str(settings.login_url)):
        if settings.auth.method == "password":
            return _password_login(settings, domain, session)
        if settings.instance_url is None:
            raise SourceRejected(VENDOR, None, "session auth needs sources.salesforce.instance_url")
        return Salesforce(
            instance_url=str(settings.instance_url).rstrip("/"),
            session_id=read_secret(settings.auth.session_id_env, "Salesforce session id").get_secret_value(),
            version=settings.api_version, session=session,
        )


def _password_login(settings: SalesforceSettings, domain: str, session: requests.Session) -> Salesforce:
    auth = settings.auth
    password = read_secret(auth.password_env, "Salesforce password").get_secret_value()
    token = read_secret(auth.security_token_env, "Salesforce security token").get_secret_value()
    try:
        return Salesforce(username=read_secret(auth.username_env, "Salesforce username").get_secret_value(),
                          password=password, security_token=token, domain=domain, version=settings.api_version,
                          session=session)
    except SalesforceAuthenticationFailed as exc:
        # Salesforce never says which of the three is wrong: name the variables to check.
        hint = f"check {auth.username_env}, {auth.password_env} and {auth.security_token_env}"
        raise SourceRejected(VENDOR, None, f"{_refusal(exc, secrets=(password, token))}; {hint}") from None


def _refusal(exc: SalesforceAuthenticationFailed, secrets: tuple[str, ...] = ()) -> str:
    """'login refused (CODE): reason'. Not `exc.message`: simple-salesforce leaves that an
    unformatted template ('... Response content: {content}'). A login reply that is not a
    SOAP fault (a proxy's page) comes through whole, so keep one line and blank any secret."""
    reason = next((line.strip() for line in exc.auth_message.splitlines() if line.strip()), "no reason given")[:200]
    for secret in filter(None, secrets):
        reason = reason.replace(secret, "***")
    return f"login refused ({exc.code if exc.code is not None else 'no error code'}): {reason}"


@contextmanager
def translate_errors(stream: str | None, url: str) -> Iterator[None]:
    """Turn transport and API failures into ConnectorErrors naming the stream."""
    try:
        yield
    except requests.exceptions.SSLError as exc:
        raise SourceUnreachable(VENDOR, stream, f"TLS handshake with {url} failed ({_first_line(exc)})") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise SourceUnreachable(VENDOR, stream, f"cannot reach {url} ({_reason(exc)})") from None
    except SalesforceAuthenticationFailed as exc:
        raise SourceRejected(VENDOR, stream, _refusal(exc)) from None
    except SalesforceError as exc:
        error = StreamRefused if stream and _refused_for_good(exc) else SourceRejected
        raise error(VENDOR, stream, f"HTTP {exc.status} from {exc.resource_name}: {_api_message(exc)}") from None


def error_codes(exc: SalesforceError) -> set[str]:
    """The errorCode of each error in a Salesforce error answer."""
    content = exc.content
    return {e.get("errorCode") for e in content if isinstance(e, dict)} if isinstance(content, list) else set()


def _refused_for_good(exc: SalesforceError) -> bool:
    """A deleted object or field, a missing permission, a session that logging in again did not
    renew: asking again will not help. The daily API limit (403 too) resets; it is not one."""
    return exc.status in (400, 401, 403, 404) and "REQUEST_LIMIT_EXCEEDED" not in error_codes(exc)


def _api_message(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in content)
    return str(content)[:300]


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Name or service not known", "No route to host"):
        if marker in text:
            return marker.lower()
    return _first_line(exc)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]
