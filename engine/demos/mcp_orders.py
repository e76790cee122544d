"""The Refund agent demo's MCP tool server (stdio): ``lookup_order`` and ``refund`` over a few canned orders.

Started by an agent step as the ``weft-orders`` entry of ``WEFT_MCP_COMMANDS`` (``python -m
engine.demos.mcp_orders``), one process per attempt. A refund is applied once per idempotency key (the agent
sends its journal entry's key in the call's ``_meta``); a real payments server would keep that record durably.
"""

from __future__ import annotations

import hashlib

from mcp.server.fastmcp import Context, FastMCP

ORDERS = {
    "A-1001": {"order_id": "A-1001", "customer": "Ada Lovelace", "item": "USB-C cable", "amount": 19.0,
               "status": "delivered"},
    "A-1002": {"order_id": "A-1002", "customer": "Grace Hopper", "item": "Mechanical keyboard", "amount": 249.0,
               "status": "delivered"},
    "A-1003": {"order_id": "A-1003", "customer": "Alan Turing", "item": "Desk lamp", "amount": 85.5,
               "status": "delivered"},
}

server = FastMCP("weft-orders", log_level="WARNING")
_refunds: dict[str, dict] = {}


@server.tool()
def lookup_order(order_id: str) -> dict:
    """Look an order up by its id (e.g. A-1002): customer, item, amount paid, status."""
    order = ORDERS.get(order_id.strip().upper())
    return order or {"error": f"no order {order_id!r}; known orders: {', '.join(ORDERS)}"}


@server.tool()
def refund(order_id: str, amount: float, reason: str, ctx: Context) -> dict:
    """Refund ``amount`` of an order to its customer. Refunds over 100 need an operator's approval."""
    meta = ctx.request_context.meta
    key = (getattr(meta, "idempotency_key", None) or (meta.model_extra or {}).get("idempotency_key")) if meta else None
    key = key or f"{order_id}:{amount}:{reason}"
    if key in _refunds:
        return _refunds[key]
    order = ORDERS.get(order_id.strip().upper())
    if order is None:
        return {"error": f"no order {order_id!r}"}
    if amount <= 0 or amount > order["amount"]:
        return {"error": f"a refund of {order_id} must be more than 0 and at most {order['amount']}"}
    refund_id = "R-" + hashlib.sha256(key.encode()).hexdigest()[:8].upper()
    _refunds[key] = answer = {"refunded": amount, "order_id": order["order_id"], "refund_id": refund_id,
                              "reason": reason}
    return answer


if __name__ == "__main__":
    server.run("stdio")
