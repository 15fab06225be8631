"""The long-lived objects of one gateway process, built once in the lifespan.

Nothing here is global: :func:`build_services` makes them from settings and
``create_app`` hangs them on the app. Tests build them the same way, with a
policy directory and state of their own.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gateway.observability.metrics import Metrics
from gateway.pipeline.handler import Pipeline
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.decision_log import DecisionLog
from gateway.policy.reload import PolicyHolder, ReloadResult
from gateway.settings import Settings
from gateway.state.factory import StateBackends, build_state
from gateway.upstream.breakers import CircuitState
from gateway.upstream.demo import DemoPolicyHolder
from gateway.upstream.registry import Providers
from gateway.upstream.router import Router

log = logging.getLogger("gateway")


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    policy: PolicyHolder
    state: StateBackends
    providers: Providers
    router: Router
    pipeline: Pipeline
    decision_log: DecisionLog | None = None
    #: the worker threads that judge large bodies (see gateway.judging.offloop)
    judge_executor: ThreadPoolExecutor | None = None
    draining: bool = False
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def start_background(self) -> None:
        """Start the policy watcher (hot reload on file change) and warm litellm up."""
        loop = asyncio.get_running_loop()
        targets = list(self.policy.policy.targets.values())
        self._tasks.append(loop.create_task(self.providers.warm_up(targets)))
        if self.settings.reload_interval_s > 0:
            task = asyncio.get_running_loop().create_task(
                self.policy.watch(self.settings.reload_interval_s, self.on_reload)
            )
            self._tasks.append(task)

    def reload_now(self) -> ReloadResult:
        """Reload the policy (SIGHUP); the last good policy stays on failure."""
        result = self.policy.try_reload()
        self.on_reload(result)
        return result

    def on_reload(self, result: ReloadResult) -> None:
        if result.ok and not result.changed:
            return
        self.metrics.policy_reloads.labels("success" if result.ok else "failure").inc()
        if result.ok:
            self.bind_policy(self.policy.policy)
            log.info("policy reloaded (%s)", self.policy.policy.fingerprint[:12])
        else:
            log.error(
                "policy reload failed; the last good policy stays in force:\n%s", result.error
            )

    def bind_policy(self, policy: CompiledPolicy) -> None:
        self.metrics.bind_policy(
            aliases=policy.aliases,
            rules=policy.rules(),
            targets=policy.targets,
            entities=self.policy.facts.scanner.entities,
            tasks=_tasks_vocabulary(),
        )
        self.metrics.policy_info.set(self.policy.loaded_at)
        self.refresh_gauges()

    def refresh_gauges(self) -> None:
        policy = self.policy.policy
        for target in policy.targets.values():
            state = self.router.circuit_state(target)
            up = target.unavailable_reason is None and state is not CircuitState.OPEN
            name = self.metrics.target(target.name)
            self.metrics.circuit_state.labels(name).set(int(state))
            self.metrics.target_up.labels(
                name, target.kind.value, target.max_sensitivity.label
            ).set(1 if up else 0)

    async def readiness(self) -> dict[str, Any]:
        policy = self.policy.policy
        state_ok = await self.state.ping()
        self.metrics.state_up.labels(self.state.backend).set(1 if state_ok else 0)
        targets = {}
        for name, target in policy.targets.items():
            circuit = self.router.circuit_state(target)
            if target.unavailable_reason:
                targets[name] = {"available": False, "reason": target.unavailable_reason}
            elif circuit is CircuitState.OPEN:
                targets[name] = {
                    "available": False,
                    "reason": "circuit open after repeated failures",
                }
            else:
                targets[name] = {"available": True}
        ready = not self.draining
        status = "draining" if self.draining else ("ok" if state_ok else "degraded")
        return {
            "ready": ready,
            "status": status,
            "state": {"backend": self.state.backend, "ok": state_ok},
            "policy": {
                "fingerprint": policy.fingerprint,
                "loaded_at": self.policy.loaded_at,
                "last_reload_error": self.policy.last_error,
            },
            "targets": targets,
        }

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pipeline.drain()
        await self.providers.aclose()
        await self.state.aclose()
        if self.judge_executor is not None:
            self.judge_executor.shutdown(wait=False, cancel_futures=True)
        if self.decision_log is not None:
            self.decision_log.close()


#: the interpreter's thread switch interval while judging threads run (default 5 ms)
_SWITCH_INTERVAL_S = 0.001


def _tasks_vocabulary() -> tuple[str, ...]:
    from gateway.judging.task import TASKS

    return tuple(TASKS)


async def build_services(settings: Settings) -> Services:
    """Build everything; a bad policy raises ``PolicyError`` here (refused at start)."""
    started = time.perf_counter()
    metrics = Metrics()
    holder_type = DemoPolicyHolder if settings.demo else PolicyHolder
    holder = holder_type(settings.policies, settings.environ)
    metrics.policy_reloads.labels("success").inc()
    state = await build_state(
        settings.redis_url,
        timeout_s=settings.redis_timeout_s,
        near_cache_s=settings.cache_near_s,
    )
    providers = Providers()
    router = Router(providers, metrics)
    decision_log = DecisionLog(settings.decision_log) if settings.decision_log else None
    # the judging threads share the GIL with the event loop: a short switch
    # interval bounds how long the loop waits for it while one is scanning
    sys.setswitchinterval(min(sys.getswitchinterval(), _SWITCH_INTERVAL_S))
    judge_executor = ThreadPoolExecutor(
        max_workers=max(1, settings.judge_threads), thread_name_prefix="gateway-judge"
    )
    pipeline = Pipeline(
        settings=settings,
        policy=holder,
        router=router,
        state=state,
        metrics=metrics,
        decision_log=decision_log,
        judge_executor=judge_executor,
    )
    services = Services(
        settings, metrics, holder, state, providers, router, pipeline, decision_log, judge_executor
    )
    services.bind_policy(holder.policy)
    log.debug("services built in %.1f ms", (time.perf_counter() - started) * 1000)
    return services
