"""Who may act for whom: nonces per signer, API agents, vault leaders (Hyperliquid's rules).

* Nonces: the 100 highest are kept per signer; a new one must be unused, above the smallest
  kept once 100 are held, and inside ``(now − 2 days, now + 1 day)`` of venue time.
* Agents: one unnamed and up to three named per master; approving under a taken name (or a
  second unnamed one) replaces the old agent; the zero address deletes the name; an agent past
  its ``valid_until`` no longer resolves.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from infrastructure.simulator import errors
from infrastructure.simulator.errors import AgentApprovalError
from infrastructure.simulator.rules import DAY_MS
from infrastructure.simulator.state import Agent, Core

NONCES_KEPT = 100
NAMED_AGENTS = 3
ZERO_ADDRESS = "0x" + "0" * 40


def use_nonce(core: Core, signer: str, nonce: int) -> str | None:
    kept = core.nonces.setdefault(signer.lower(), [])
    at = bisect_left(kept, nonce)
    if at < len(kept) and kept[at] == nonce:
        return errors.NONCE_DUPLICATE.format(nonce=nonce)
    oldest = core.now_ms - 2 * DAY_MS
    if nonce <= oldest:
        return errors.NONCE_LOW.format(nonce=nonce, bound=oldest)
    if len(kept) >= NONCES_KEPT and nonce <= kept[0]:
        return errors.NONCE_LOW.format(nonce=nonce, bound=kept[0])
    newest = core.now_ms + DAY_MS
    if nonce >= newest:
        return errors.NONCE_HIGH.format(nonce=nonce, bound=newest)
    insort(kept, nonce)
    if len(kept) > NONCES_KEPT:
        del kept[0]
    return None


def live(agent: Agent, now_ms: int) -> bool:
    return agent.valid_until is None or now_ms < agent.valid_until


def approve_agent(
    core: Core, user: str, agent: str, name: str | None, valid_until_ms: int | None
) -> None:
    user, agent, label = user.lower(), agent.lower(), name or ""
    same_name = [a for a, rec in core.agents.items() if rec.master == user and rec.name == label]
    if agent == ZERO_ADDRESS:
        for address in same_name:
            del core.agents[address]
        return
    named = [
        a
        for a, rec in core.agents.items()
        if rec.master == user and rec.name and rec.name != label and live(rec, core.now_ms)
    ]
    if label and len(named) >= NAMED_AGENTS:
        raise AgentApprovalError(errors.TOO_MANY_AGENTS)
    for address in same_name:
        del core.agents[address]
    core.agents[agent] = Agent(user, label, valid_until_ms)  # an address serves one master


def resolve_signer(core: Core, signer: str, vault: str | None) -> str | None:
    address = signer.lower()
    account = core.accounts.get(address)
    user: str | None = None
    if account is not None and account.funded:
        user = address
    else:
        agent = core.agents.get(address)
        if agent is not None and live(agent, core.now_ms):
            user = agent.master
    if user is None or vault is None:
        return user
    vault = vault.lower()
    return vault if core.vaults.get(vault) == user else None


def role(core: Core, address: str) -> dict[str, object]:
    address = address.lower()
    if address in core.vaults:
        return {"role": "vault"}
    agent = core.agents.get(address)
    if agent is not None and live(agent, core.now_ms):
        return {"role": "agent", "data": {"user": agent.master}}
    account = core.accounts.get(address)
    if account is not None and account.funded:
        return {"role": "user"}
    return {"role": "missing"}
