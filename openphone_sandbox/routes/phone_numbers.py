"""GET /v1/phone-numbers[/{id}]: the workspace's lines; not paginated."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from ..envelope import found
from ..web import current_sandbox

bp = Blueprint("phone_numbers", __name__, url_prefix="/v1/phone-numbers")


@bp.get("")
def phone_numbers() -> Any:
    sandbox = current_sandbox()
    user = request.args.get("userId")
    with sandbox.lock:
        data = [ln.to_api() for ln in sandbox.world.lines if not user or any(u["id"] == user for u in ln.users)]
    return {"data": data}


@bp.get("/<pid>")
def phone_number(pid: str) -> Any:
    return {"data": found(current_sandbox().lines.get(pid), "Phone number").to_api()}
