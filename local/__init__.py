"""The product run without accounts and without Docker (README, "The local stack").

- Twilio: Stoplight Prism serving Twilio's own OpenAPI description of the 2010 API (`prism`).
- AWS: moto_server on loopback, with the secret, the state table and the event bus (`moto_stack`).
- API Gateway: a local HTTP server that serves the routes template.yaml declares, built on SAM
  CLI's own local API Gateway, calling the handlers in this process (`api_server`).

`python -m local.stack` keeps all three up (`make local`); `python -m local.demo` uses them
(`make demo`); the contract tests start the same pieces.
"""
