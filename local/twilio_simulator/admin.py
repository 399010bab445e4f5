"""The simulator's own endpoints, under a prefix no Twilio path can have, without auth:

GET  /__simulator                     this list
GET  /__simulator/counters            requests, concurrency, 429s, invalid requests, callbacks
GET  /__simulator/invalid-requests    each request outside Twilio's description, with its errors
GET  /__simulator/messages            every message with its status history and callbacks
GET  /__simulator/messages/{sid}      one of them
GET  /__simulator/config              the configuration (without secrets)
POST /__simulator/reset               forget messages, counters, queues and pending statuses
POST /__simulator/auth-token          {"auth_token": "…"}: the token accepted and signed with
POST /__simulator/callback-mode       {"mode": "ordered" | "reordered" | "repeated"}
POST /__simulator/inbound             {"from", "to", "body", "media_urls", "messaging_service_sid",
                                       "url", "params"}: POST a signed inbound message to the
                                       webhook; answers what the webhook answered
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local.twilio_simulator.inbound import Inbound

if TYPE_CHECKING:
    from local.twilio_simulator.server import Simulator

PREFIX = "/__simulator"
ENDPOINTS = [line.strip() for line in (__doc__ or "").splitlines() if line.strip().startswith(("GET ", "POST "))]


@dataclass
class AdminAnswer:
    status: int
    body: Any


def handle_admin(simulator: Simulator, method: str, path: str, body: bytes) -> AdminAnswer:
    route = path.removeprefix(PREFIX).strip("/")
    try:
        data = json.loads(body) if body.strip() else {}
    except ValueError:
        return AdminAnswer(400, {"error": "the body must be JSON"})
    if method == "GET":
        return _get(simulator, route)
    if method == "POST":
        try:
            return _post(simulator, route, data if isinstance(data, dict) else {})
        except ValueError as error:
            return AdminAnswer(400, {"error": str(error)})
    return AdminAnswer(405, {"error": f"{method} is not an admin method", "endpoints": ENDPOINTS})


def _get(simulator: Simulator, route: str) -> AdminAnswer:
    if route == "":
        return AdminAnswer(200, {"endpoints": ENDPOINTS})
    if route == "counters":
        return AdminAnswer(200, simulator.counters())
    if route == "invalid-requests":
        return AdminAnswer(200, simulator.invalid_requests())
    if route == "messages":
        return AdminAnswer(200, simulator.messages())
    if route.startswith("messages/"):
        message = simulator.message(route.removeprefix("messages/"))
        return AdminAnswer(200, message) if message else AdminAnswer(404, {"error": "no such message"})
    if route == "config":
        return AdminAnswer(200, simulator.config.public())
    return AdminAnswer(404, {"error": f"no admin endpoint GET {PREFIX}/{route}", "endpoints": ENDPOINTS})


def _post(simulator: Simulator, route: str, data: dict[str, Any]) -> AdminAnswer:
    if route == "reset":
        simulator.reset()
        return AdminAnswer(200, {"reset": True})
    if route == "auth-token":
        token = data.get("auth_token")
        if not isinstance(token, str) or not token:
            raise ValueError("'auth_token' must be a non-empty string")
        simulator.set_auth_token(token)
        return AdminAnswer(200, {"auth_token_changed": True})
    if route == "callback-mode":
        simulator.set_callback_mode(str(data.get("mode")))
        return AdminAnswer(200, {"mode": data.get("mode")})
    if route == "inbound":
        result = simulator.inject_inbound(Inbound.from_json(data))
        return AdminAnswer(200 if result["status"] is not None else 502, result)
    return AdminAnswer(404, {"error": f"no admin endpoint POST {PREFIX}/{route}", "endpoints": ENDPOINTS})
