"""Hot reload: keep the current policy, swap in a new one only when it compiles.

:class:`PolicyHolder` owns the current :class:`CompiledPolicy` and its
:class:`FactsBuilder` as one snapshot, replaced atomically (one attribute
assignment), so a request sees either the old pair or the new one. A policy
that fails to load is reported (``last_error``, the ``gateway.policy``
logger) and the last good one stays in force (invariant 3 in
docs/invariants.md).

Logging is done here and only here, once per attempt: a refusal (error), a
new policy (info), and a recovery (info: the files load again after a
refusal, whether or not they differ from the policy in force).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.judging.build import FactsBuilder
from gateway.judging.prices import PriceBook
from gateway.judging.sensitivity import Detector
from gateway.judging.task import TaskClassifier
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.loader import load_policy, policy_files
from gateway.policy.problems import PolicyError

log = logging.getLogger("gateway.policy")


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    policy: CompiledPolicy
    facts: FactsBuilder[CompiledPolicy]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    error: str | None = None
    #: a new policy is in force
    changed: bool = False
    #: the files load again after a refused reload
    recovered: bool = False


def _signature(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detection: names, sizes and mtimes of the policy files."""
    try:
        files = policy_files(path)
        return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    except OSError:
        return ()


def _fingerprint(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        for file in policy_files(path):
            digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()


class PolicyHolder:
    """The policy in force. The constructor raises :class:`PolicyError` if the first load fails."""

    def __init__(
        self,
        path: Path,
        environ: Mapping[str, str],
        *,
        prices: PriceBook | None = None,
        task_classifier: TaskClassifier | None = None,
        scanner_plugins: Sequence[Detector] = (),
    ) -> None:
        self.path = path
        self._environ = environ
        self._prices = prices
        self._classifier = task_classifier
        self._plugins = tuple(scanner_plugins)
        self._lock = threading.Lock()
        self._current = self._load()
        self._signature = _signature(path)
        self.loaded_at: float = time.time()
        self.last_error: str | None = None

    def _load(self) -> LoadedPolicy:
        policy = load_policy(self.path, self._environ, prices=self._prices)
        builder = FactsBuilder(
            policy, task_classifier=self._classifier, scanner_plugins=self._plugins
        )
        return LoadedPolicy(policy, builder)

    @property
    def prices(self) -> PriceBook | None:
        """The price book every load prices the targets from."""
        return self._prices

    @property
    def current(self) -> LoadedPolicy:
        """The policy and facts builder in force, as one consistent snapshot."""
        return self._current

    @property
    def policy(self) -> CompiledPolicy:
        return self._current.policy

    @property
    def facts(self) -> FactsBuilder[CompiledPolicy]:
        return self._current.facts

    def try_reload(self) -> ReloadResult:
        """Load the files again; swap only if they changed and compile. Never raises for a bad policy."""
        with self._lock:
            self._signature = _signature(self.path)
            failing = self.last_error is not None
            fingerprint = self._current.policy.fingerprint
            if _fingerprint(self.path) == fingerprint:
                self.last_error = None
                if failing:
                    log.info(
                        "policy reload recovered: the files are valid again and match the "
                        "policy in force (%s)",
                        fingerprint[:12],
                    )
                return ReloadResult(ok=True, recovered=failing)
            try:
                loaded = self._load()
            except PolicyError as exc:
                self.last_error = exc.report()
                log.error(
                    "policy reload refused, keeping the last good policy:\n%s", self.last_error
                )
                return ReloadResult(ok=False, error=self.last_error)
            except ValueError as exc:
                # the scanner refuses a custom entity it cannot compile
                self.last_error = f"policy reload refused: {exc}"
                log.error("%s; keeping the last good policy", self.last_error)
                return ReloadResult(ok=False, error=self.last_error)
            self._current = loaded
            self.loaded_at = time.time()
            self.last_error = None
            for warning in loaded.policy.warnings:
                log.warning("%s", warning)
            log.info(
                "policy %s from %s (%s)",
                "reload recovered: new policy in force" if failing else "reloaded",
                self.path,
                loaded.policy.fingerprint[:12],
            )
            return ReloadResult(ok=True, changed=True, recovered=failing)

    def files_changed(self) -> bool:
        return _signature(self.path) != self._signature

    async def watch(self, interval_s: float, on_result: Callable[[ReloadResult], None]) -> None:
        """Poll the files every ``interval_s``; on a change, reload (in a thread) and report.

        Runs until cancelled. ``on_result`` is called only after a reload attempt.
        """
        while True:
            await asyncio.sleep(interval_s)
            if not self.files_changed():
                continue
            result = await asyncio.to_thread(self.try_reload)
            on_result(result)
