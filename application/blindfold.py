"""A blindfold for the model: coin names and calendar dates masked in the prompt, the answer's
aliases mapped back before it is read.

A model that remembers a period (BTC's path in 2024) can trade a backtest of it from memory;
a blindfolded re-run over the same snapshots shows how much of a result depends on that.
Coins become ``ASSET1``, ``ASSET2``… in the trader's coin order (stable across cycles, so
the series stay comparable); dates become days relative to the cycle's own date (``day 0
14:03:09``, ``day -2``), keeping the time of day (funding hours, sessions) and hiding the
year. Prices are left as they are: the issue is memory of names and dates, and rescaling
prices would change the numbers the risk rules check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime

from application.ports import RenderedPrompt, prompt_digest

ALIAS_PREFIX = "ASSET"
_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(T(?=\d))?")
_ALIAS = re.compile(rf"(?<![A-Za-z0-9_]){ALIAS_PREFIX}(\d+)(?![A-Za-z0-9_])")


class Blindfold:
    def __init__(self, coins: Sequence[str]) -> None:
        clash = [c for c in coins if _ALIAS.fullmatch(c)]
        if clash:
            raise ValueError(f"coin {clash[0]} looks like a blindfold alias ({ALIAS_PREFIX}N)")
        self.alias = {coin: f"{ALIAS_PREFIX}{n}" for n, coin in enumerate(coins, start=1)}
        self.coin = {alias: coin for coin, alias in self.alias.items()}
        # Longest first, so that a coin named inside another (ETH in ETHFI) is not split.
        names = sorted(self.alias, key=len, reverse=True)
        self._coins = re.compile(
            r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])"
        )

    def mask(self, text: str, today: date) -> str:
        text = self._coins.sub(lambda m: self.alias[m.group(1)], text)

        def relative(m: re.Match[str]) -> str:
            try:
                day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return "day ?"  # not a real date: hidden all the same
            offset = (day - today).days
            return (f"day {offset:+d}" if offset else "day 0") + (" " if m.group(4) else "")

        return _DATE.sub(relative, text)

    def unmask(self, text: str) -> str:
        """The answer with the aliases back to coin names (unknown aliases stay, and the
        parser refuses them as coins the trader does not trade)."""
        return _ALIAS.sub(lambda m: self.coin.get(m.group(0), m.group(0)), text)

    def prompt(self, prompt: RenderedPrompt, as_of: datetime) -> RenderedPrompt:
        today = as_of.date()
        system, user = self.mask(prompt.system, today), self.mask(prompt.user, today)
        return replace(
            prompt,
            system=system,
            user=user,
            digest=prompt_digest(system, user),
            template=f"{prompt.template}+blindfold",
        )
