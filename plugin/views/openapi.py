"""OpenAPI 3.0 description of the plugin's own JSON endpoints (served at /api/v1/openapi.json).

CI runs schemathesis against it: every documented input, valid or not, must get a
documented answer and never a server error.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}}}},
}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for c in codes}


_CSRF = {"name": "X-CSRF-Token", "in": "header", "required": True, "schema": {"type": "string"}}
_SESSION_ANSWER = {"description": "a new sidebar session, naming the signed-in agent if any",
                   "content": {"application/json": {"schema": {
                       "type": "object", "required": ["status", "session", "csrf", "agent"],
                       "properties": {"status": {"type": "string"},
                                      "session": {"type": "string"}, "csrf": {"type": "string"},
                                      "remember": {"type": "string"},
                                      "agent": {"type": "object", "nullable": True}}}}}}


def _agent_call(operation: str, summary: str, body: dict[str, Any] | None,
                responses: dict[str, Any]) -> dict[str, Any]:
    call: dict[str, Any] = {"operationId": operation, "summary": summary,
                            "security": [{"session": []}], "parameters": [_CSRF],
                            "responses": responses}
    if body is not None:
        call["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return {"post": call}


_OUTCOME = {"description": "how the refund ended (done, in progress, refused, unknown)",
            "content": {"application/json": {"schema": {
                "type": "object", "required": ["status", "message"],
                "properties": {"status": {"type": "string"}, "message": {"type": "string"},
                               "refund_id": {"type": "string", "nullable": True}}}}}}
_REFUND_BODY = {"type": "object", "required": ["order_id", "payment_id", "amount_minor",
                                               "currency"],
                "properties": {"order_id": {"type": "string"}, "payment_id": {"type": "string"},
                               "amount_minor": {"type": "integer"},
                               "currency": {"type": "string"},
                               "reason": {"type": "string", "enum": [
                                   "requested_by_customer", "duplicate", "fraudulent"]}}}


_CANCEL_BODY: dict[str, Any] = {
    "type": "object", "required": ["order_id", "refund_id"], "properties": {
        "order_id": {"type": "string"}, "refund_id": {"type": "string"}}}
_ERP_BODY: dict[str, Any] = {
    "type": "object", "required": ["order_id", "action", "subject"], "properties": {
        "order_id": {"type": "string"},
        "action": {"type": "string",
                   "enum": ["erp_return_authorization", "erp_item_receipt"]},
        "subject": {"type": "string", "description": "the portal's return id, or the shop's "
                                                     "refund id of a store return"}}}
_RESOLVE_BODY: dict[str, Any] = {
    "type": "object", "required": ["order_id"], "properties": {
        "order_id": {"type": "string"},
        "key": {"type": "string", "description": "the confirm step's key: 409 if the record "
                                                "moved on since"}}}


def _refund_call(operation: str, summary: str, responses: dict[str, Any],
                 body: dict[str, Any] | None = None) -> dict[str, Any]:
    call = _agent_call(operation, summary, body or _REFUND_BODY, responses)
    call["post"]["parameters"] = [{"name": "ticket_id", "in": "path", "required": True,
                                   "schema": {"type": "string"}}, _CSRF]
    return call


SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Order Truth", "version": "1",
             "description": "The merged record of an order, and the sidebar's own API."},
    "paths": {
        "/healthz": {"get": {"operationId": "health", "responses": {
            "200": {"description": "up", "content": {"application/json": {"schema": {
                "type": "object"}}}}}}},
        "/api/v1/orders/{order_id}": {"get": {
            "operationId": "orderTruth",
            "summary": "The merged record for one order",
            "parameters": [
                {"name": "order_id", "in": "path", "required": True,
                 "schema": {"type": "string", "maxLength": 64}},
                {"name": "installation", "in": "query", "schema": {"type": "string"}},
                {"name": "refresh", "in": "query", "schema": {"type": "string",
                                                              "enum": ["0", "1"]}},
            ],
            "responses": {
                "200": {"description": "the record", "content": {"application/json": {
                    "schema": {"type": "object", "required": [
                        "order_number", "headline", "flags", "sources"]}}}},
                **_errors(400, 401, 404, 503),
            },
        }},
        "/zendesk/api/resolve-order": {"post": {
            "operationId": "resolveOrder",
            "security": [{"session": []}],
            "parameters": [{"name": "X-CSRF-Token", "in": "header", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["ticket_id"], "properties": {
                    "ticket_id": {"type": "string"}, "field": {"type": "string"},
                    "subject": {"type": "string"}, "description": {"type": "string"}}}}}},
            "responses": {
                "200": {"description": "the order the ticket is about", "content": {
                    "application/json": {"schema": {"type": "object", "required": [
                        "order_id", "source", "found", "tried"]}}}},
                **_errors(400, 401, 403, 404, 503),
            },
        }},
        "/zendesk/api/tickets/{ticket_id}/actions": {"post": {
            "operationId": "ticketAction",
            "security": [{"session": []}],
            "parameters": [
                {"name": "ticket_id", "in": "path", "required": True,
                 "schema": {"type": "string"}},
                {"name": "X-CSRF-Token", "in": "header", "required": True,
                 "schema": {"type": "string"}},
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["kind", "key", "order_id"], "properties": {
                    "kind": {"type": "string", "enum": ["note", "tags"]},
                    "key": {"type": "string"}, "order_id": {"type": "string"}}}}}},
            "responses": {
                "200": {"description": "done", "content": {"application/json": {
                    "schema": {"type": "object"}}}},
                "202": {"description": "in progress", "content": {"application/json": {
                    "schema": {"type": "object"}}}},
                "422": {"description": "refused by the helpdesk", "content": {
                    "application/json": {"schema": {"type": "object"}}}},
                "502": {"description": "the helpdesk failed; retry", "content": {
                    "application/json": {"schema": {"type": "object"}}}},
                **_errors(400, 401, 403, 404, 409, 503),
            },
        }},
        "/zendesk/api/tickets/{ticket_id}/refund/preview": _refund_call(
            "refundPreview", "What a refund would do (the confirm step)", {
                "200": {"description": "the plan", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["summary", "amount_minor", "currency",
                                                   "refundable", "key"]}}}},
                **_errors(400, 401, 403, 404, 409)}),
        "/zendesk/api/tickets/{ticket_id}/refund": _refund_call(
            "refund", "Refund at the processor, at most once for the same request", {
                "200": _OUTCOME, "202": _OUTCOME, "422": _OUTCOME, "502": _OUTCOME,
                **_errors(400, 401, 403, 404, 409)}),
        "/zendesk/api/tickets/{ticket_id}/refund/cancel/preview": _refund_call(
            "cancelRefundPreview", "What cancelling a flagged refund would do", {
                "200": {"description": "the plan", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["summary", "refund_id", "amount",
                                                   "key"]}}}},
                **_errors(400, 401, 403, 404, 409, 503)}, _CANCEL_BODY),
        "/zendesk/api/tickets/{ticket_id}/refund/cancel": _refund_call(
            "cancelRefund", "Cancel a flagged refund still waiting on the customer, once", {
                "200": _OUTCOME, "202": _OUTCOME, "422": _OUTCOME, "502": _OUTCOME,
                **_errors(400, 401, 403, 404, 409, 503)}, _CANCEL_BODY),
        "/zendesk/api/tickets/{ticket_id}/erp/preview": _refund_call(
            "erpFixPreview", "Which ERP documents a fix would make (the confirm step)", {
                "200": {"description": "the plan", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["summary", "steps", "key"]}}}},
                **_errors(400, 401, 403, 404, 409, 503)}, _ERP_BODY),
        "/zendesk/api/tickets/{ticket_id}/erp": _refund_call(
            "erpFix", "Make the ERP documents the record shows missing, once", {
                "200": _OUTCOME, "202": _OUTCOME, "422": _OUTCOME, "502": _OUTCOME,
                **_errors(400, 401, 403, 404, 409, 503)}, _ERP_BODY),
        "/zendesk/api/tickets/{ticket_id}/resolve/preview": _refund_call(
            "resolvePreview", "The record's outcome and the ticket changes resolving makes", {
                "200": {"description": "the plan", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["outcome", "changes", "summary", "key"]}}}},
                **_errors(400, 401, 403, 404, 409, 503)}, _RESOLVE_BODY),
        "/zendesk/api/tickets/{ticket_id}/resolve": _refund_call(
            "resolveTicket", "Apply the admin's ticket changes for the outcome, once", {
                "200": _OUTCOME, "202": _OUTCOME, "422": _OUTCOME, "502": _OUTCOME,
                **_errors(400, 401, 403, 404, 409, 503)}, _RESOLVE_BODY),
        "/zendesk/api/agent/sign-in": _agent_call(
            "agentSignIn", "Start the agent's own Zendesk sign-in (opens in a pop-up)", None, {
                "200": {"description": "where the pop-up starts, and the claim to collect it",
                        "content": {"application/json": {"schema": {
                            "type": "object", "required": ["start_url", "claim"]}}}},
                **_errors(401, 403, 409)}),
        "/zendesk/api/agent/claim": _agent_call(
            "agentClaim", "Collect a finished sign-in",
            {"type": "object", "required": ["claim"], "properties": {"claim": {"type": "string"}}},
            {"200": _SESSION_ANSWER,
             "202": {"description": "not finished yet", "content": {"application/json": {
                 "schema": {"type": "object"}}}},
             **_errors(400, 401, 403)}),
        "/zendesk/api/agent/resume": _agent_call(
            "agentResume", "Pick up a remembered sign-in in a later sidebar",
            {"type": "object", "required": ["remember"],
             "properties": {"remember": {"type": "string"}}},
            {"200": _SESSION_ANSWER, **_errors(401, 403)}),
        "/zendesk/api/agent/sign-out": _agent_call(
            "agentSignOut", "Forget the agent's sign-in", None,
            {"200": _SESSION_ANSWER, **_errors(401, 403)}),
    },
    "components": {
        "schemas": {"Error": _ERROR},
        "securitySchemes": {"session": {"type": "http", "scheme": "bearer",
                                        "description": "the sidebar session from a launch"}},
    },
}


@bp.get("/api/v1/openapi.json")
def spec():
    """This description."""
    return jsonify(SPEC)
