"""A stand-in for Microsoft's and Google's OAuth2 endpoints, over HTTPS on 127.0.0.1.

    with identity_provider() as idp:
        app = idp.register(client_id=..., client_secret=..., directory="contoso...")
        settings.OAUTH_MICROSOFT_TOKEN_URL = idp.microsoft_token_url

One threaded `http.server` serves:
- POST /{directory}/oauth2/v2.0/token: Microsoft's client-credentials grant;
- GET /authorize: Google's consent page, approved at once as `idp.account`
  (or refused, when `idp.deny_consent`), redirecting with a code and the state;
- POST /token: Google's authorization_code (PKCE S256 checked) and
  refresh_token grants.
Errors are the providers' own: invalid_client (wrong secret), invalid_grant
(revoked or unknown refresh token, bad code or verifier), AADSTS codes.
`token_requests` lists each token request's grant type; `accepts(token, user)`
is what the XOAUTH2 SMTP server asks. Tokens expire when `expire_tokens()`
says so, never by the clock.
"""

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.smtp_servers import HOST, TRUSTED_CA, _server_context

MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"


@dataclass
class App:
    client_id: str
    client_secret: str
    directory: str = ""  # Microsoft: the directory (tenant) it is registered in
    # Microsoft: the mailboxes the app's service principal may send as.
    mailboxes: set[str] = field(default_factory=set)
    redirect_uris: set[str] = field(default_factory=set)


@dataclass
class Issued:
    client_id: str
    user: str  # Google: the account; Microsoft: "" (the app itself)
    expired: bool = False


@dataclass
class IdentityProvider:
    host: str = HOST
    port: int = 0
    account: str = "sender@example.com"
    deny_consent: bool = False
    expires_in: int = 3600
    # 503 to every token request while set: the provider is down.
    unavailable: bool = False
    apps: dict[str, App] = field(default_factory=dict)
    access_tokens: dict[str, Issued] = field(default_factory=dict)
    refresh_tokens: dict[str, Issued] = field(default_factory=dict)
    codes: dict[str, dict] = field(default_factory=dict)
    token_requests: list[str] = field(default_factory=list)
    # Every form a token request carried, to check what a client sent.
    token_forms: list[dict] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def microsoft_token_url(self) -> str:
        return self.base_url + "/{tenant}/oauth2/v2.0/token"

    @property
    def google_token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def google_authorize_url(self) -> str:
        return self.base_url + "/authorize"

    def register(self, **kwargs) -> App:
        app = App(**kwargs)
        self.apps[app.client_id] = app
        return app

    def grant_refresh_token(self, client_id: str, user: str | None = None) -> str:
        """A refresh token as if the consent page had been completed (for token tests)."""
        token = "1//" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = Issued(client_id, user or self.account)
        return token

    def revoke_all(self) -> None:
        """The user removed the app's access: refresh and access tokens stop working."""
        self.refresh_tokens.clear()
        self.access_tokens.clear()

    def expire_tokens(self) -> None:
        for issued in self.access_tokens.values():
            issued.expired = True

    def accepts(self, token: str, user: str) -> bool:
        issued = self.access_tokens.get(token)
        if issued is None or issued.expired:
            return False
        if issued.user:
            return issued.user.lower() == user.lower()
        return user.lower() in self.apps[issued.client_id].mailboxes

    # --- what the endpoints do --------------------------------------------------------------

    def _issue(self, client_id: str, user: str, *, refresh: bool, scope: str) -> dict:
        access = "eyJ0eXAi." + secrets.token_urlsafe(32)
        self.access_tokens[access] = Issued(client_id, user)
        answer = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": scope,
        }
        if refresh:
            answer["refresh_token"] = self.grant_refresh_token(client_id, user)
        return answer

    def microsoft_token(self, directory: str, form: dict) -> tuple[int, dict]:
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if not any(app.directory == directory for app in self.apps.values()):
            return 400, {
                "error": "invalid_request",
                "error_description": f"AADSTS90002: Tenant '{directory}' not found. Check to "
                "make sure you have the correct tenant ID.\r\nTrace ID: 1234",
            }
        app = self.apps.get(form.get("client_id", ""))
        if app is None or app.directory != directory:
            return 400, {
                "error": "unauthorized_client",
                "error_description": "AADSTS700016: Application with identifier "
                f"'{form.get('client_id')}' was not found in the directory '{directory}'.",
            }
        if form.get("client_secret") != app.client_secret:
            return 401, {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided. Ensure "
                "the secret being sent in the request is the client secret value.",
            }
        if form.get("scope") != MICROSOFT_SCOPE:
            return 400, {"error": "invalid_scope", "error_description": "AADSTS70011: bad scope"}
        return 200, self._issue(app.client_id, "", refresh=False, scope=MICROSOFT_SCOPE)

    def google_token(self, form: dict) -> tuple[int, dict]:
        app = self.apps.get(form.get("client_id", ""))
        if app is None or form.get("client_secret") != app.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            issued = self.refresh_tokens.get(form.get("refresh_token", ""))
            if issued is None or issued.client_id != app.client_id:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                }
            return 200, self._issue(app.client_id, issued.user, refresh=False, scope=GOOGLE_SCOPE)
        if grant_type == "authorization_code":
            code = self.codes.pop(form.get("code", ""), None)
            if (
                code is None
                or code["client_id"] != app.client_id
                or code["redirect_uri"] != form.get("redirect_uri")
                or _s256(form.get("code_verifier", "")) != code["code_challenge"]
            ):
                return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
            return 200, self._issue(app.client_id, code["user"], refresh=True, scope=GOOGLE_SCOPE)
        return 400, {"error": "unsupported_grant_type"}

    def authorize(self, query: dict) -> tuple[int, str]:
        """Google's consent page, approved (or denied) at once: (status, Location or text)."""
        app = self.apps.get(query.get("client_id", ""))
        redirect_uri = query.get("redirect_uri", "")
        if app is None or redirect_uri not in app.redirect_uris:
            return 400, "Error 400: redirect_uri_mismatch"
        if (
            query.get("response_type") != "code"
            or query.get("scope") != GOOGLE_SCOPE
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
        ):
            return 400, "Error 400: invalid_request"
        state = {"state": query["state"]} if query.get("state") else {}
        if self.deny_consent:
            return 302, f"{redirect_uri}?{urlencode({'error': 'access_denied', **state})}"
        code = "4/" + secrets.token_urlsafe(24)
        self.codes[code] = {
            "client_id": app.client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": query["code_challenge"],
            "user": self.account,
        }
        return 302, f"{redirect_uri}?{urlencode({'code': code, **state})}"


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _handler(idp: IdentityProvider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 — quiet: tests read no access log
            pass

        def _json(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            path = urlsplit(self.path).path
            idp.token_requests.append(form.get("grant_type", ""))
            idp.token_forms.append(form)
            if idp.unavailable:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            parts = path.strip("/").split("/")
            if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
                self._json(*idp.microsoft_token(parts[0], form))
            elif path == "/token":
                self._json(*idp.google_token(form))
            else:
                self._json(404, {"error": "not_found"})

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path != "/authorize":
                self._json(404, {"error": "not_found"})
                return
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            status, where = idp.authorize(query)
            self.send_response(status)
            if status == 302:
                self.send_header("Location", where)
            self.send_header("Content-Length", "0" if status == 302 else str(len(where)))
            self.end_headers()
            if status != 302:
                self.wfile.write(where.encode())

    return Handler


@contextmanager
def identity_provider(**options) -> Iterator[IdentityProvider]:
    idp = IdentityProvider(**options)
    server = ThreadingHTTPServer((HOST, 0), _handler(idp))
    server.daemon_threads = True
    server.socket = _server_context(TRUSTED_CA).wrap_socket(server.socket, server_side=True)
    idp.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
