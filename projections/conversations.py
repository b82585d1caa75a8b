"""The conversations view: each trader's latest model invocations in nof1's item shape.

An item joins a cycle's ``DecisionRequested`` (the user prompt it was asked) with its
``LLMResponded`` (decisions, raw answer, reasoning, tokens, cost) or ``LLMFailed``
(a typed error and no decisions). Newest first; at most ``per_trader`` per trader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import msgspec

from domain.trader import Trader
from projections.common import conversation_doc_id, num, originator, seconds, text
from projections.documents import Conversation, ConversationError, DecisionDoc
from projections.engine import Decoded, Projector, ViewMeta

SUMMARY_CHARS = 280


class PendingQuestion(msgspec.Struct):
    trader: str
    cycle_no: int
    as_of: float
    user_prompt: str
    prompt_version: str
    prompt_digest: str


class ConversationsMeta(ViewMeta):
    names: dict[str, str] = {}
    pending: dict[str, PendingQuestion] = {}
    counts: dict[str, int] = {}  # items per trader in the document


class ConversationsState(msgspec.Struct):
    conversations: list[Conversation] = []
    view: ConversationsMeta = msgspec.field(
        name="_view", default_factory=lambda: ConversationsMeta("")
    )


def summarize(cot: str, decisions: dict[str, DecisionDoc]) -> str:
    text = " ".join(cot.split())
    if not text:
        acted = [d for d in decisions.values() if d.signal != "hold"]
        chosen = acted or list(decisions.values())
        parts = [
            f"{d.coin} {d.signal}" + (f": {d.justification}" if d.justification else "")
            for d in chosen[:3]
        ]
        text = "; ".join(parts)
    if len(text) <= SUMMARY_CHARS:
        return text
    cut = text[:SUMMARY_CHARS]
    stop = cut.rfind(". ")
    return cut[: stop + 1] if stop > SUMMARY_CHARS // 2 else cut.rstrip() + "…"


class ConversationsProjector(Projector[ConversationsState]):
    name = "conversations"
    version = 1
    primary = "conversations.json"
    state_type: ClassVar[type[Any]] = ConversationsState
    handles: ClassVar[frozenset[type[Any]] | None] = frozenset(
        {Trader.Registered, Trader.DecisionRequested, Trader.LLMResponded, Trader.LLMFailed}
    )
    ignores: ClassVar[Mapping[type[Any], frozenset[str]]] = {
        Trader.DecisionRequested: frozenset({"snapshot", "snapshot_digest", "marks"})
    }
    #: Read only for the questions and answers still in the document after a batch.
    raw: ClassVar[Mapping[type[Any], frozenset[str]]] = {
        Trader.DecisionRequested: frozenset({"user_prompt"}),
        Trader.LLMResponded: frozenset({"raw_text"}),
        Trader.LLMFailed: frozenset({"raw_text"}),
    }

    def __init__(self, per_trader: int = 30) -> None:
        self.per_trader = per_trader

    def initial(self) -> ConversationsState:
        return ConversationsState(view=ConversationsMeta(self.view_name))

    def meta(self, state: ConversationsState) -> ViewMeta:
        return state.view

    def reduce(self, state: ConversationsState, kind: type[Any], event: Any) -> bool:
        if kind is Trader.Registered:
            state.view.names[originator(event)] = event.config_id
            return False
        if kind is not Trader.DecisionRequested and kind not in _ANSWERS:
            return False
        trader = state.view.names.get(originator(event))
        if trader is None:
            return False
        if kind is Trader.DecisionRequested:
            state.view.pending[event.cycle_id] = _question(trader, event)
            return False
        if kind is Trader.LLMResponded:
            question = state.view.pending.pop(event.cycle_id, None)
            if question is None:
                return False
            decisions = {d["coin"]: _decision(d) for d in event.decisions}
            self._add(state, question, event, decisions, None)
            return True
        if kind is Trader.LLMFailed:
            question = state.view.pending.pop(event.cycle_id, None)
            if question is None:
                return False
            error = ConversationError(reason=event.reason, detail=event.detail)
            self._add(state, question, event, {}, error)
            return True
        return False

    def reduce_batch(self, state: ConversationsState, events: Sequence[Decoded]) -> None:
        """As ``reduce`` one event after another, but a conversation is built only if it is
        still in the document at the end of the batch (the newest ``per_trader`` of each
        trader's), and a question only if it is still pending then."""
        items = state.conversations
        counts = state.view.counts
        in_document: dict[str, int] = {}
        for item in items:
            in_document[item.model_id] = in_document.get(item.model_id, 0) + 1
        if in_document != counts:  # not a state this shortcut knows the answer for
            super().reduce_batch(state, events)
            return
        names = state.view.names
        pending: dict[str, Any] = state.view.pending  # questions or _Asked, until the end
        answers: list[tuple[Any, type[Any], Any]] = []  # (question, kind, event), oldest first
        new: dict[str, int] = {}  # answers per trader in this batch
        for _, kind, event in events:
            if kind is Trader.Registered:
                names[originator(event)] = event.config_id
                continue
            if kind is not Trader.DecisionRequested and kind not in _ANSWERS:
                continue
            trader = names.get(originator(event))
            if trader is None:
                continue
            if kind is Trader.DecisionRequested:
                pending[event.cycle_id] = _Asked(trader, event)
                continue
            question = pending.pop(event.cycle_id, None)
            if question is None:
                continue
            answers.append((question, kind, event))
            asker = question.trader
            new[asker] = new.get(asker, 0) + 1
            counts[asker] = counts.get(asker, 0)  # a trader's first item: its place in counts
        keep_new: dict[str, int] = {}
        keep_old: dict[str, int] = {}
        for trader, added in new.items():
            before = counts[trader]
            # Adding one beyond per_trader drops the trader's oldest: the count never passes
            # max(before, per_trader).
            final = before if before >= self.per_trader else min(before + added, self.per_trader)
            counts[trader] = final
            keep_new[trader] = min(added, final)
            keep_old[trader] = final - keep_new[trader]
        fresh: list[Conversation] = []
        for question, kind, event in reversed(answers):  # newest first, as in the document
            asker = question.trader
            if keep_new[asker] == 0:
                continue
            keep_new[asker] -= 1
            fresh.append(self._answer(_asked(question), kind, event))
        kept = []
        for item in items:
            left = keep_old.get(item.model_id)
            if left is None:
                kept.append(item)
            elif left > 0:
                keep_old[item.model_id] = left - 1
                kept.append(item)
        state.conversations = fresh + kept
        for cycle_id, question in list(pending.items()):
            if isinstance(question, _Asked):
                pending[cycle_id] = _asked(question)

    def _answer(self, question: PendingQuestion, kind: type[Any], event: Any) -> Conversation:
        if kind is Trader.LLMResponded:
            decisions = {d["coin"]: _decision(d) for d in event.decisions}
            return _conversation(question, event, decisions, None)
        error = ConversationError(reason=event.reason, detail=event.detail)
        return _conversation(question, event, {}, error)

    def _add(
        self,
        state: ConversationsState,
        question: PendingQuestion,
        event: Any,
        decisions: dict[str, DecisionDoc],
        error: ConversationError | None,
    ) -> None:
        item = _conversation(question, event, decisions, error)
        items = state.conversations
        items.insert(0, item)
        counts = state.view.counts
        counts[question.trader] = counts.get(question.trader, 0) + 1
        if counts[question.trader] > self.per_trader:
            # Drop this trader's oldest item (the last of theirs in newest-first order).
            for index in range(len(items) - 1, -1, -1):
                if items[index].model_id == question.trader:
                    del items[index]
                    counts[question.trader] -= 1
                    break


_ANSWERS = frozenset({Trader.LLMResponded, Trader.LLMFailed})


class _Asked(NamedTuple):
    """A question not built yet (the trader asking, its DecisionRequested)."""

    trader: str
    event: Any


def _asked(question: PendingQuestion | _Asked) -> PendingQuestion:
    if isinstance(question, _Asked):
        return _question(question.trader, question.event)
    return question


def _question(trader: str, event: Any) -> PendingQuestion:
    return PendingQuestion(
        trader=trader,
        cycle_no=event.cycle_no,
        as_of=seconds(event.as_of),
        user_prompt=text(event.user_prompt),
        prompt_version=event.prompt_version,
        prompt_digest=event.prompt_digest,
    )


def _conversation(
    question: PendingQuestion,
    event: Any,
    decisions: dict[str, DecisionDoc],
    error: ConversationError | None,
) -> Conversation:
    cot = getattr(event, "cot_trace", "")
    return Conversation(
        id=conversation_doc_id(question.trader, event.timestamp),
        model_id=question.trader,
        timestamp=seconds(event.timestamp),
        cycle_id=question.cycle_no,
        user_prompt=question.user_prompt,
        cot_trace=cot,
        cot_trace_summary=summarize(cot, decisions)
        if error is None
        else f"no decision: {error.reason}",
        llm_response=decisions,
        model=event.model,
        raw_response=text(event.raw_text),
        error=error,
        tokens_in=getattr(event, "tokens_in", 0),
        tokens_out=getattr(event, "tokens_out", 0),
        cost_usd=num(getattr(event, "cost_usd", None)),
        latency_ms=event.latency_ms,
        prompt_version=question.prompt_version,
        prompt_digest=question.prompt_digest,
    )


def _decision(record: dict[str, Any]) -> DecisionDoc:
    get = record.get
    return DecisionDoc(
        coin=str(record["coin"]),
        signal=str(record["signal"]),
        quantity=float(get("quantity") or 0),
        leverage=int(get("leverage") or 0),
        profit_target=float(get("profit_target") or 0),
        stop_loss=float(get("stop_loss") or 0),
        invalidation_condition=str(get("invalidation_condition") or ""),
        confidence=float(get("confidence") or 0),
        risk_usd=float(get("risk_usd") or 0),
        justification=str(get("justification") or ""),
    )
