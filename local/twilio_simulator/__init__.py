"""A stateful Twilio simulator for the local stack and the tests (docs/local-twilio.md).

Every request is checked against Twilio's own OpenAPI description of its 2010 API; messages are
kept, move through Twilio's statuses, and send status callbacks signed as Twilio signs them. It
is not Twilio: what Twilio decides beyond its description is simulated by documented rules.

    from local.twilio_simulator import Simulator, SimulatorConfig
    simulator = Simulator(SimulatorConfig(time_scale=0.01))
    base_url = simulator.start()
"""

from local.twilio_simulator.admin import PREFIX as ADMIN_PREFIX
from local.twilio_simulator.config import (
    CALLBACK_MODES,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    CallbackMode,
    PhoneNumber,
    SimulatorConfig,
    StatusDelays,
)
from local.twilio_simulator.inbound import Inbound
from local.twilio_simulator.outcomes import RECIPIENT_OUTCOMES, SENDER_OUTCOMES, Outcome
from local.twilio_simulator.server import Simulator

__all__ = [
    "ADMIN_PREFIX",
    "CALLBACK_MODES",
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "RECIPIENT_OUTCOMES",
    "SENDER_OUTCOMES",
    "CallbackMode",
    "Inbound",
    "Outcome",
    "PhoneNumber",
    "Simulator",
    "SimulatorConfig",
    "StatusDelays",
]
