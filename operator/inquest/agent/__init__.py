"""The agent: a tool-calling loop over read-only cluster tools, with limits and context budgets.

- ``tokens``: the token estimate every budget is computed with;
- ``budget``: context-window arithmetic (tool-output budgets, output reserve);
- ``conversation``: the message list, compacted before it would overflow the window;
- ``tools``/``kinds``/``render``: the read-only tool registry and its Kubernetes rendering;
- ``redact``: the one gate all tool output passes before it reaches a model;
- ``model``: the chat-model edge (OpenAI-compatible) with deadline-aware retries;
- ``loop``: the agent loop; ``runner``: one Investigation's lifecycle (pending, queue, run, status).
"""
