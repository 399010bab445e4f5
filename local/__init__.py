"""The product run without accounts and without Docker (README, "The local stack").

- Twilio: the project's stateful simulator (`twilio_simulator`), which validates each request
  against Twilio's own OpenAPI description and posts signed status callbacks; the contract tests
  use Stoplight Prism on the same description instead (`prism`).
- AWS: moto_server on loopback, with the template's secret, state table, buses, queues, bucket
  and state machines, which moto executes (`moto_stack`, `moto_hooks`).
- API Gateway: a local HTTP server that serves the routes template.yaml declares, built on SAM
  CLI's own local API Gateway, calling the handlers in this process (`api_server`).

`python -m local.stack` keeps them up (`make local`); `python -m local.demo` uses them
(`make demo`); the local and contract tests start the same pieces.
"""
