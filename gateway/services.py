"""The long-lived objects of one gateway process, built once in the lifespan.

Nothing here is global: :func:`build_services` makes them from settings and
``create_app`` hangs them on the app. It is the only place that builds a
long-lived object: every collaborator is passed in (the pipeline gets the
authenticator, limits, accountant and batch writer it uses), and outer code
finds each one here, never through another object's attributes. Tests build
them the same way, with a policy directory and state of their own.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gateway.judging.ner import ner_plugins
from gateway.judging.prices import PriceBook
from gateway.levels import Level
from gateway.observability.audit_log import AuditLog
from gateway.observability.metrics import Metrics
from gateway.observability.recent import RecentDecisions
from gateway.observability.tracing import Tracer
from gateway.pipeline.handler import Pipeline
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.price_report import log_price_sources, price_readiness
from gateway.policy.reload import PolicyHolder, ReloadResult
from gateway.quota.auth import Authenticator
from gateway.quota.batch_writer import BatchWriter
from gateway.quota.in_flight import InFlight
from gateway.quota.limits import Limits
from gateway.quota.spend import Accountant
from gateway.settings import Settings
from gateway.state.factory import StateBackends, build_state
from gateway.targets import Target
from gateway.upstream.breakers import CircuitState
from gateway.upstream.demo import DemoPolicyHolder
from gateway.upstream.probe import Prober
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
    auth: Authenticator
    limits: Limits
    accountant: Accountant
    batch_writer: BatchWriter
    in_flight: InFlight
    pipeline: Pipeline
    prober: Prober
    recent: RecentDecisions
    decision_log: AuditLog | None = None
    tracer: Tracer = field(default_factory=Tracer)
    #: the worker threads that judge large bodies (see gateway.judging.offloop)
    judge_executor: ThreadPoolExecutor | None = None
    draining: bool = False
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def start_background(self) -> None:
        """Warm the key store (``/readyz`` waits for it), start the policy
        watcher (hot reload on file change), the target probes, and warm litellm up."""
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.auth.warm()))
        targets = list(self.policy.policy.targets.values())
        self._tasks.append(loop.create_task(self.providers.warm_up(targets)))
        if self.settings.probe_interval_s > 0:
            probes = self.prober.run(self._targets, self.settings.probe_interval_s)
            self._tasks.append(loop.create_task(probes))
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

    def _targets(self) -> list[Target]:
        return list(self.policy.policy.targets.values())

    def on_reload(self, result: ReloadResult) -> None:
        """Count a reload attempt and bind a new policy's metrics. The holder
        has logged the attempt (once: refused, reloaded or recovered)."""
        self.metrics.policy_loaded(ok=result.ok, changed=result.changed)
        if result.ok and not result.changed:
            return
        if result.ok:
            self.bind_policy(self.policy.policy)

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
            up = (
                target.unavailable_reason is None
                and state is not CircuitState.OPEN
                and not self.prober.health(target).down
            )
            name = self.metrics.target(target.name)
            self.metrics.circuit_state.labels(name).set(int(state))
            self.metrics.target_up.labels(
                name, target.kind.value, target.max_sensitivity.label
            ).set(1 if up else 0)

    def target_health(self, target: Target) -> dict[str, Any]:
        """One target as ``/readyz`` shows it: available or not, and why, in words."""
        circuit = self.router.circuit_state(target)
        health = self.prober.health(target)
        reason = None
        if target.unavailable_reason:
            reason = target.unavailable_reason
        elif health.down:
            reason = health.detail
        elif circuit is CircuitState.OPEN:
            reason = "circuit open after repeated failures"
        return {
            "available": reason is None,
            "reason": reason,
            "kind": target.kind.value,
            "max_sensitivity": target.max_sensitivity.label,
            "model": target.model,
            "probe": health.to_dict(),
            "circuit": circuit.name.lower(),
        }

    async def readiness(self) -> tuple[dict[str, Any], int]:
        """The ``/readyz`` body and its status.

        200 with ``status: ok`` when all is well; 200 with ``status: degraded``
        and ``problems`` (in words) when the state backend is down, a reload is
        failing, or a target that may take restricted data is down; 503 when
        draining, or when no target that may take restricted data is available
        (the policy cannot serve it at all: Kubernetes takes the replica out).
        """
        policy = self.policy.policy
        state_ok = await self.state.ping()
        self.metrics.state_up.labels(self.state.backend).set(1 if state_ok else 0)
        targets = {name: self.target_health(t) for name, t in policy.targets.items()}
        restricted = [n for n, t in policy.targets.items() if t.max_sensitivity >= Level.RESTRICTED]
        problems = []
        if not state_ok:
            problems.append(f"the {self.state.backend} state backend is not answering")
        state_problems = self.state.problems()
        problems.extend(state_problems)
        if self.policy.last_error is not None:
            problems.append("the last policy reload was refused; the last good policy is in force")
        for name in restricted:
            if not targets[name]["available"]:
                problems.append(
                    f"target {name} (takes restricted data) is unavailable: "
                    f"{targets[name]['reason']}"
                )
        serves_restricted = not restricted or any(targets[n]["available"] for n in restricted)
        if not serves_restricted:
            problems.append("no target that may take restricted data is available")
        if self.draining:
            status, code = "draining", 503
        elif not self.auth.warmed:
            status, code = "warming", 503
        elif not serves_restricted:
            status, code = "unavailable", 503
        else:
            status, code = ("degraded" if problems else "ok"), 200
        body = {
            "ready": code == 200,
            "status": status,
            "problems": problems,
            "state": {"backend": self.state.backend, "ok": state_ok, "problems": state_problems},
            "policy": {
                "fingerprint": policy.fingerprint,
                "loaded_at": self.policy.loaded_at,
                "last_reload_error": self.policy.last_error,
            },
            "targets": targets,
            "prices": price_readiness(policy, self.policy.prices),
        }
        return body, code

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pipeline.drain()
        await self.batch_writer.aclose()  # the last spend and token corrections
        await self.limits.aclose()  # every lease given back
        await self.providers.aclose()
        await self.prober.aclose()
        await self.state.aclose()
        if self.judge_executor is not None:
            self.judge_executor.shutdown(wait=False, cancel_futures=True)
        if self.decision_log is not None:
            self.decision_log.close()
        self.tracer.shutdown()


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
    prices = PriceBook.from_litellm(settings.prices_file)
    holder = holder_type(
        settings.policies, settings.environ, prices=prices, scanner_plugins=ner_plugins(settings)
    )
    log_price_sources(holder.policy, prices)
    metrics.policy_loaded(ok=True)
    state = await build_state(
        settings.redis_url,
        timeout_s=settings.redis_timeout_s,
        near_cache_s=settings.cache_near_s,
        keys_file=settings.keys_file,
    )
    providers = Providers()
    router = Router(providers, metrics)
    decision_log = (
        AuditLog(
            settings.decision_log,
            hmac_key=settings.audit_hmac_key.encode() if settings.audit_hmac_key else None,
            max_bytes=settings.audit_max_bytes,
            rotate_s=settings.audit_rotate_s,
        )
        if settings.decision_log
        else None
    )
    tracer = Tracer.from_settings(settings)
    recent = RecentDecisions(settings.console_decisions)
    auth = Authenticator(state.keys, metrics)
    limits = Limits(
        state, metrics, fail_mode=settings.limits_fail_mode, lease_s=settings.limits_lease_s
    )
    accountant = Accountant(state, metrics)
    batch_writer = BatchWriter([accountant.flush, limits.flush])
    in_flight = InFlight(settings.key_max_in_flight)
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
        auth=auth,
        limits=limits,
        accountant=accountant,
        batch_writer=batch_writer,
        in_flight=in_flight,
        decision_log=decision_log,
        tracer=tracer,
        recent=recent,
        judge_executor=judge_executor,
    )
    services = Services(
        settings,
        metrics,
        holder,
        state,
        providers,
        router,
        auth,
        limits,
        accountant,
        batch_writer,
        in_flight,
        pipeline,
        Prober(),
        recent,
        decision_log,
        tracer,
        judge_executor,
    )
    services.bind_policy(holder.policy)
    log.debug("services built in %.1f ms", (time.perf_counter() - started) * 1000)
    return services
