"""Real peers for the messaging tests: an aiosmtpd server and a small HTTP server."""

from __future__ import annotations

import email
import json
import threading
import warnings
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from storeflow.app import Storeflow

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


class Inbox:
    """Reads what storeflow's own local SMTP server (simulate.Mailbox) kept as .eml files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def messages(self) -> list[Message]:
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(self.folder.glob("*.eml"))]

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address in str(m["To"])]


TWILIO_TOKEN = "twilio-test-auth-token"


@dataclass
class Shop:
    sf: Storeflow
    inbox: Inbox
    peer: HttpPeer
    client: TestClient


def apply(sf: Storeflow, text: str) -> Any:
    return sf.flows.apply(sf.flows.validate(text, "test.yaml"), status="live")


def body_of(msg: Message, subtype: str) -> str:
    for part in msg.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/{subtype} part")


class HttpPeer:
    """A local HTTP server recording requests; answers like Twilio's Messages API or Slack."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()} if b"=" in raw and not \
                    raw.startswith(b"{") else {}
                peer.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw, "form": form})
                if "/Messages.json" in self.path:
                    body = json.dumps({"sid": f"SM{len(peer.requests):032d}", "status": "queued"}).encode()
                    self.send_response(201)
                else:
                    body = b"ok"
                    self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
