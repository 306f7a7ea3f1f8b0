"""Agents and sites pages: the agent list with filters and a per-site summary, enrolment tokens
(the secret shown once), an agent's inventory and policy, and revocation with confirmation.

Everything goes through :class:`soc_api.agents.services.AgentsService`, so the pages and the API
share roles, site scope and audit; a collector that cannot be reached is a message, not an error.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from soc_api.agents.routers import service_for
from soc_api.agents.schemas import AgentOut, TokenIn
from soc_api.agents.services import (
    CHANGE_ROLES,
    READ_ROLES,
    Actor,
    AgentsError,
    CollectorRefused,
    CollectorUnavailable,
)
from soc_api.deps import SessionDep, StateDep
from soc_api.web import nav
from soc_api.web.flash import redirect
from soc_api.web.guard import FormRejected, PagePrincipal, allow, form_csrf, ip
from soc_api.web.i18n import N_
from soc_api.web.render import render

router = APIRouter()
nav.register(nav.NavEntry("agents", N_("Agents"), "/agents", order=45, allowed=nav.has_role(*READ_ROLES)))
Csrf = Annotated[str, Form(max_length=200)]
STATUS_LABELS = {"online": N_("online"), "silent": N_("silent"), "never": N_("never seen"), "revoked": N_("revoked")}
PROTECTION_LABELS = {"on": N_("protected"), "off": N_("protection off"), "unknown": N_("unknown")}
TOKEN_LABELS = {"valid": N_("token valid"), "used": N_("token used up"), "expired": N_("token expired"),
                "revoked": N_("revoked")}  # fmt: skip
UNAVAILABLE = N_("The collector cannot be reached; try again later.")


def _matches(agent: AgentOut, site: str, status: str, protection: str, version: str) -> bool:
    return (
        (not site or agent.site == site)
        and (not status or agent.status == status)
        and (not protection or agent.protection.state == protection)
        and (not version or agent.version == version)
    )


def _refused(exc: Exception, back: str) -> FormRejected:
    if isinstance(exc, CollectorUnavailable):
        return FormRejected(UNAVAILABLE, back, str(exc))
    message = exc.message if isinstance(exc, CollectorRefused) else str(exc)
    return FormRejected(N_("The action was refused."), back, message)


@router.get("/agents")
def agents_page(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    site: str = "",
    status: str = "",
    protection: str = "",
    version: str = "",
) -> HTMLResponse:
    allow(principal, nav.has_role(*READ_ROLES))
    service = service_for(state)
    context: dict[str, Any] = {
        "filters": {"site": site[:64], "status": status[:16], "protection": protection[:16], "version": version[:64]},
        "status_labels": STATUS_LABELS,
        "protection_labels": PROTECTION_LABELS,
        "token_labels": TOKEN_LABELS,
        "can_change": principal.role in CHANGE_ROLES,
        "new_token": None,
        "unavailable": None,
        "agents": [],
        "sites": [],
        "versions": [],
        "tokens": [],
        "inventory_available": True,
    }
    try:
        listing = service.list_agents(session, principal)
        context["tokens"] = service.tokens(principal)
    except CollectorUnavailable as exc:
        context["unavailable"] = str(exc)
        return render(request, state, "agents.html", context, principal=principal, active="agents", status_code=503)
    f = context["filters"]
    context["agents"] = [
        a for a in listing.agents if _matches(a, f["site"], f["status"], f["protection"], f["version"])
    ]
    context["sites"] = listing.sites
    context["versions"] = sorted({a.version for a in listing.agents if a.version})
    context["inventory_available"] = listing.inventory_available
    return render(request, state, "agents.html", context, principal=principal, active="agents")


@router.post("/agents/tokens")
def token_create(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    site: Annotated[str, Form(max_length=64)] = "",
    uses: Annotated[int, Form(ge=1, le=10_000)] = 1,
    ttl_hours: Annotated[float, Form(ge=0.1, le=24 * 365)] = 24.0,
    note: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Csrf = "",
) -> Response:
    """The new token is rendered in this response only (never put in a URL or a cookie)."""
    form_csrf(request, principal, csrf_token)
    allow(principal, nav.has_role(*CHANGE_ROLES))
    try:
        body = TokenIn(site=site.strip() or None, uses=uses, ttl_hours=ttl_hours, note=note.strip() or None)
    except ValueError:
        raise FormRejected(N_("Check the values you entered."), "/agents") from None
    try:
        created = service_for(state).create_token(session, Actor(principal, ip(request)), body)
    except (AgentsError, CollectorUnavailable, CollectorRefused) as exc:
        raise _refused(exc, "/agents") from None
    context: dict[str, Any] = {"token": created}
    return render(request, state, "agent_token_created.html", context, principal=principal, active="agents")


@router.post("/agents/tokens/{token_id}/revoke")
def token_revoke(
    token_id: str,
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    csrf_token: Csrf = "",
) -> Response:
    form_csrf(request, principal, csrf_token)
    allow(principal, nav.has_role(*CHANGE_ROLES))
    try:
        service_for(state).revoke_token(session, Actor(principal, ip(request)), token_id)
    except (AgentsError, CollectorUnavailable, CollectorRefused) as exc:
        raise _refused(exc, "/agents") from None
    return redirect("/agents", ok=N_("Token revoked."), secure=state.config.security.cookie_secure)


@router.get("/agents/{agent_id}")
def agent_page(agent_id: str, request: Request, state: StateDep, principal: PagePrincipal) -> HTMLResponse:
    allow(principal, nav.has_role(*READ_ROLES))
    try:
        agent = service_for(state).agent_detail(principal, agent_id)
    except AgentsError as exc:
        if exc.status == 404:
            return render(request, state, "not_found.html", {}, principal=principal, status_code=404)
        raise
    except (CollectorUnavailable, CollectorRefused) as exc:
        raise _refused(exc, "/agents") from None
    context: dict[str, Any] = {
        "agent": agent,
        "status_labels": STATUS_LABELS,
        "protection_labels": PROTECTION_LABELS,
        "token_labels": TOKEN_LABELS,
        "can_change": principal.role in CHANGE_ROLES,
        "policy_json": json.dumps(agent.policy, indent=2, sort_keys=True, ensure_ascii=False),
        "agent_layer_json": json.dumps(agent.agent_layer or {}, indent=2, sort_keys=True, ensure_ascii=False),
    }
    return render(request, state, "agent_detail.html", context, principal=principal, active="agents")


@router.post("/agents/{agent_id}/revoke")
def agent_revoke(
    agent_id: str,
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    confirm: Annotated[str, Form(max_length=128)] = "",
    csrf_token: Csrf = "",
) -> Response:
    """Revocation is final: the form asks to type the host name to confirm."""
    form_csrf(request, principal, csrf_token)
    allow(principal, nav.has_role(*CHANGE_ROLES))
    back = f"/agents/{agent_id}"
    service = service_for(state)
    try:
        agent = service.agent_detail(principal, agent_id)
        if confirm.strip().lower() != agent.hostname.lower():
            raise FormRejected(N_("Type the host name to confirm."), back)
        service.revoke_agent(session, Actor(principal, ip(request)), agent_id)
    except (AgentsError, CollectorUnavailable, CollectorRefused) as exc:
        raise _refused(exc, back) from None
    return redirect(back, ok=N_("Agent revoked."), secure=state.config.security.cookie_secure)


@router.post("/agents/{agent_id}/policy")
def agent_policy(
    agent_id: str,
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    policy: Annotated[str, Form(max_length=100_000)] = "",
    csrf_token: Csrf = "",
) -> Response:
    """Edit the agent's own policy layer (JSON); an empty object removes the layer."""
    form_csrf(request, principal, csrf_token)
    allow(principal, nav.has_role(*CHANGE_ROLES))
    back = f"/agents/{agent_id}"
    try:
        parsed = json.loads(policy or "{}")
    except ValueError:
        raise FormRejected(N_("The policy must be a JSON object."), back) from None
    if not isinstance(parsed, dict):
        raise FormRejected(N_("The policy must be a JSON object."), back)
    try:
        service_for(state).set_policy(session, Actor(principal, ip(request)), f"agent-{agent_id}", parsed or None)
    except (AgentsError, CollectorUnavailable, CollectorRefused) as exc:
        raise _refused(exc, back) from None
    return redirect(back, ok=N_("Policy saved."), secure=state.config.security.cookie_secure)
