"""HTTP endpoints: ``/api/v1/agents``, ``/api/v1/enrolment-tokens``, ``/api/v1/policies/{layer}``.

Reading needs the admin, officer or auditor role (site-scoped); changes need admin and are audited.
The collector being down or misconfigured is a 503 problem, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from soc_api.agents.schemas import (
    AgentDetailOut,
    AgentOut,
    AgentsList,
    PolicyIn,
    PolicyOut,
    TokenCreated,
    TokenIn,
    TokenOut,
)
from soc_api.agents.services import Actor, AgentsError, AgentsService, CollectorRefused, CollectorUnavailable
from soc_api.agents.settings import AgentsSettings
from soc_api.deps import SessionDep, StateDep, client_ip, current_principal
from soc_api.problems import Problem
from soc_api.services.principal import Principal
from soc_api.state import AppState

router = APIRouter(prefix="/api/v1", tags=["agents"])
PrincipalDep = Annotated[Principal, Depends(current_principal)]


def agents_settings(state: AppState) -> AgentsSettings:
    settings = getattr(state.config, "agents", None)
    return settings if isinstance(settings, AgentsSettings) else AgentsSettings()


def service_for(state: AppState) -> AgentsService:
    return AgentsService(agents_settings(state), state.store)


@contextmanager
def problems() -> Iterator[None]:
    """Refusals here and at the collector as RFC 9457 problems."""
    try:
        yield
    except AgentsError as exc:
        raise Problem(exc.status, str(exc), kind=exc.kind) from None
    except CollectorUnavailable as exc:
        raise Problem(503, str(exc), kind="collector-unavailable", headers={"Retry-After": "30"}) from None
    except CollectorRefused as exc:
        status = exc.status if exc.status in (404, 409, 422) else 502
        raise Problem(status, f"collector: {exc.message}", kind="collector-refused") from None


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal, client_ip(request))


@router.get("/agents", response_model=AgentsList)
def list_agents(session: SessionDep, state: StateDep, principal: PrincipalDep) -> AgentsList:
    """Every agent the caller's sites cover, with status and protection, and a summary per site."""
    with problems():
        return service_for(state).list_agents(session, principal)


@router.get("/agents/{agent_id}", response_model=AgentDetailOut)
def get_agent(agent_id: str, state: StateDep, principal: PrincipalDep) -> AgentDetailOut:
    with problems():
        return service_for(state).agent_detail(principal, agent_id)


@router.post("/agents/{agent_id}/revoke", response_model=AgentOut)
def revoke_agent(
    agent_id: str, request: Request, session: SessionDep, state: StateDep, principal: PrincipalDep
) -> AgentOut:
    """The collector refuses the agent's certificate from now on (within its cache time)."""
    with problems():
        return service_for(state).revoke_agent(session, _actor(request, principal), agent_id)


@router.get("/enrolment-tokens", response_model=list[TokenOut])
def list_tokens(state: StateDep, principal: PrincipalDep) -> list[TokenOut]:
    with problems():
        return service_for(state).tokens(principal)


@router.post("/enrolment-tokens", response_model=TokenCreated, status_code=201)
def create_token(
    body: TokenIn, request: Request, session: SessionDep, state: StateDep, principal: PrincipalDep
) -> TokenCreated:
    """The token secret is in this response only; the collector keeps a hash."""
    with problems():
        return service_for(state).create_token(session, _actor(request, principal), body)


@router.delete("/enrolment-tokens/{token_id}", response_model=TokenOut)
def revoke_token(
    token_id: str, request: Request, session: SessionDep, state: StateDep, principal: PrincipalDep
) -> TokenOut:
    with problems():
        return service_for(state).revoke_token(session, _actor(request, principal), token_id)


@router.get("/policies/{layer}", response_model=PolicyOut)
def get_policy(layer: str, state: StateDep, principal: PrincipalDep) -> PolicyOut:
    """One layer: ``default``, ``site-<code>`` or ``agent-<id>`` (later layers win key by key)."""
    with problems():
        return service_for(state).policy(principal, layer)


@router.put("/policies/{layer}", response_model=PolicyOut)
def put_policy(
    layer: str, body: PolicyIn, request: Request, session: SessionDep, state: StateDep, principal: PrincipalDep
) -> PolicyOut:
    """Replace a layer (validated by the collector as an agent would); ``{"policy": null}`` removes it."""
    with problems():
        return service_for(state).set_policy(session, _actor(request, principal), layer, body.policy)
