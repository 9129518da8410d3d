"""Switchyard provider agent and the fake OpenAI-compatible model server used by tests, benchmarks and demos.

- `switchyard-agent` (cli.py) registers a local model server with the gateway by heartbeat and proxies the
  gateway's requests to it, guarded by a shared secret.
- `switchyard-fake-model-server` (fake_model_server.py) is a deterministic stand-in for vLLM and friends.
"""
