"""Flask blueprints of the sandbox: one per v1 resource, and the /_sandbox test hooks by purpose."""

from __future__ import annotations

from flask import Blueprint

from . import (
    conversations,
    messages,
    phone_numbers,
    sandbox_control,
    sandbox_simulate,
    sandbox_truth,
    webhook_admin,
)

V1: list[Blueprint] = [phone_numbers.bp, conversations.bp, messages.bp, webhook_admin.bp]
HOOKS: list[Blueprint] = [sandbox_truth.bp, sandbox_simulate.bp, sandbox_control.bp]
