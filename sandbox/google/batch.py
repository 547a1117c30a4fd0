"""Google's batch wire format (multipart/mixed of application/http parts), reference §C.5.

googleapiclient sends LF-only parts, each an HTTP request with its own headers; it parses
the answer with `email` and then splits every inner response on ``"\\r\\n\\r\\n"`` and
recovers the request id from ``Content-ID: <response-… + N>`` by splitting on ``" + "``.
So the answer uses CRLF throughout and echoes each Content-ID unchanged after "response-".
"""

from __future__ import annotations

import email
import email.parser
import re
import secrets
from dataclasses import dataclass
from http import HTTPStatus

from sandbox.google.wire import ApiError, bad_request
from sandbox.httpserver import Response


@dataclass
class Part:
    content_id: str | None      # without the angle brackets
    method: str
    raw_path: str
    headers: dict[str, str]     # lower-cased names
    body: bytes


def parse(content_type: str, body: bytes) -> list[Part]:
    if "multipart/" not in (content_type or "").lower():
        raise bad_request("Batch requests must be multipart/mixed.", "badContent")
    outer = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not outer.is_multipart():
        raise bad_request("Malformed multipart body.", "badContent")
    return [_part(p) for p in outer.get_payload()]


def _part(mime) -> Part:
    payload = mime.get_payload(decode=False)
    if isinstance(payload, list) or not payload:
        raise bad_request("Each batch part must be one application/http request.", "badContent")
    request_line, _, rest = payload.lstrip("\r\n").partition("\n")
    try:
        method, target, _version = request_line.strip().split(" ", 2)
    except ValueError:
        raise bad_request(f"Malformed request line in batch part: {request_line[:80]!r}", "badContent") from None
    inner = email.parser.Parser().parsestr(rest)
    headers = {k.lower(): v for k, v in inner.items()}
    text = inner.get_payload()
    data = text.encode() if isinstance(text, str) else b""
    if "content-length" in headers:
        data = data[:int(headers["content-length"])]
    content_id = mime.get("Content-ID")
    if content_id:
        # Long ids may be folded across lines; unfolding removes only the line break.
        content_id = re.sub(r"\r?\n", "", content_id).strip().removeprefix("<").removesuffix(">")
    return Part(content_id, method.upper(), _path_only(target), headers, data)


def _path_only(target: str) -> str:
    """Parts carry a path; tolerate an absolute URL as well."""
    m = re.match(r"^[a-z]+://[^/]+(/.*)$", target)
    return m.group(1) if m else target


def render(answers: list[tuple[str | None, Response]]) -> Response:
    boundary = "batch_" + secrets.token_hex(12)
    chunks = []
    for content_id, resp in answers:
        head = [f"--{boundary}", "Content-Type: application/http"]
        if content_id is not None:
            head.append(f"Content-ID: <response-{content_id}>")
        head += ["", f"HTTP/1.1 {resp.status} {HTTPStatus(resp.status).phrase}", f"Content-Type: {resp.content_type}"]
        head += [f"{name}: {value}" for name, value in (resp.headers or {}).items()]
        head += [f"Content-Length: {len(resp.body)}", "", ""]
        chunks.append("\r\n".join(head).encode() + resp.body + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return Response(200, b"".join(chunks), f"multipart/mixed; boundary={boundary}")


def too_many(limit: int) -> ApiError:
    return bad_request(f"Batch request contains too many sub-requests. Maximum number of sub-requests: {limit}.",
                       "tooManyParts")
