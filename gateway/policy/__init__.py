"""The policy: YAML with line numbers -> strict schema -> compile -> pure ``decide()``.

Owns loading and checking policy files (errors name file, line, rule and a fix),
compiling them once, the pure decision (facts in, decision and trace out; no I/O, no
clock), hot reload (the last good policy stays in force), the decision record format,
and the tools over it: ``explain``, ``test`` (cases as data), ``simulate``.

May import: judging (facts, detector names, prices) and the core modules.
"""
