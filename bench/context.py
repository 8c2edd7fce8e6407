"""What every benchmark gets: how many runs, how long, and where the peers' programs are."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchContext:
    runs: int
    programs: dict[str, str]
    quick: bool = False  # shorter runs, for trying the harness out

    def seconds(self, full: float) -> float:
        return max(2.0, full / 4) if self.quick else full
