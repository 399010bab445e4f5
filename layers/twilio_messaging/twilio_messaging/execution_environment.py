"""The composition root: everything an execution environment keeps from one invocation to the
next, built on first use. The settings (read once), the credential cache, the Twilio client and
the AWS clients (their connection pools), and the public URL read from SSM.

Handlers take what an operation needs from here and pass it in; operations never import this
module, and this module imports no operation (docs/architecture.md, "Import rules"). Clients only
some functions need are imported on first use: each import is paid on a cold start.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from twilio_messaging.credentials import CredentialStore
from twilio_messaging.errors import ConfigurationError
from twilio_messaging.settings import Settings, read_settings

if TYPE_CHECKING:
    from twilio_messaging.aws_json import AwsJsonClient
    from twilio_messaging.campaign_files import CampaignFiles
    from twilio_messaging.campaign_store import CampaignStore
    from twilio_messaging.deadline import Deadline
    from twilio_messaging.delivery_records import DeliveryRecords
    from twilio_messaging.event_bus import EventBus
    from twilio_messaging.idempotency_store import IdempotencyStore
    from twilio_messaging.message_queue import MessageQueue
    from twilio_messaging.public_url import PublicUrl
    from twilio_messaging.state_table import StateTable
    from twilio_messaging.step_functions import StepFunctions
    from twilio_messaging.suppressions import Suppressions
    from twilio_messaging.twilio_client import TwilioClient


class ExecutionEnvironment:
    """One per process (`environment` below); tests build their own or call `reset()`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._built: dict[str, Any] = {}

    def _once(self, name: str, build: Any) -> Any:
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return self._built[name]

    def reset(self) -> None:
        """Forget everything built so far: the next call reads the environment again."""
        with self._lock:
            self._built.clear()

    def settings(self) -> Settings:
        settings: Settings = self._once("settings", read_settings)
        return settings

    def credential_store(self) -> CredentialStore:
        def build() -> CredentialStore:
            current = self.settings()
            return CredentialStore(
                current.twilio_secret_id,
                current.secret_max_age_seconds,
                lambda: self.aws_client("SECRETS_MANAGER"),
            )

        store: CredentialStore = self._once("credentials", build)
        return store

    def twilio_client(self) -> TwilioClient:
        def build() -> TwilioClient:
            from twilio_messaging.twilio_client import TwilioClient

            current = self.settings()
            return TwilioClient(
                current.twilio_api_base_url, self.credential_store(), pool_size=current.batch_concurrency
            )

        client: TwilioClient = self._once("twilio", build)
        return client

    def aws_client(self, service_env_name: str) -> AwsJsonClient:
        """The SigV4 client of one AWS service (its name in AWS_ENDPOINT_URL_<SERVICE>), all of
        them on one connection pool: a warm call reuses its TLS connection."""

        def build() -> AwsJsonClient:
            from twilio_messaging.aws_json import SERVICES, client_for

            return client_for(SERVICES[service_env_name], service_env_name, self.aws_session())

        client: AwsJsonClient = self._once(f"aws:{service_env_name}", build)
        return client

    def aws_session(self) -> Any:
        """The requests.Session every AWS call goes through."""

        def build() -> Any:
            import requests

            from twilio_messaging.settings import http_uses_environment

            session = requests.Session()
            session.trust_env = http_uses_environment()
            pool = requests.adapters.HTTPAdapter(pool_maxsize=self.settings().aws_connections)
            session.mount("https://", pool)
            session.mount("http://", pool)
            return session

        return self._once("aws-session", build)

    def state_table(self) -> StateTable:
        def build() -> StateTable:
            from twilio_messaging.state_table import StateTable

            return StateTable(self.settings().state_table_name, self.aws_client("DYNAMODB"))

        table: StateTable = self._once("state-table", build)
        return table

    def idempotency_store(self) -> IdempotencyStore:
        def build() -> IdempotencyStore:
            from twilio_messaging.idempotency_store import IdempotencyStore

            table_name = self.settings().state_table_name
            if not table_name:
                raise ConfigurationError("STATE_TABLE_NAME is not set: idempotent sends need the state table")
            return IdempotencyStore(table_name, connections=self.settings().aws_connections)

        store: IdempotencyStore = self._once("idempotency", build)
        return store

    def s3(self) -> Any:
        """boto3's S3 client (S3 is no JSON-protocol API): only the campaign functions load it."""

        def build() -> Any:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=3, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"})
            return boto3.client("s3", config=config)

        return self._once("s3", build)

    def campaign_files(self) -> CampaignFiles:
        def build() -> CampaignFiles:
            from twilio_messaging.campaign_files import CampaignFiles

            return CampaignFiles(self.settings().campaign_bucket, self.s3)

        files: CampaignFiles = self._once("campaign-files", build)
        return files

    def campaign_store(self) -> CampaignStore:
        def build() -> CampaignStore:
            from twilio_messaging.campaign_store import CampaignStore

            return CampaignStore(self.state_table(), self.settings().campaign_report_days)

        store: CampaignStore = self._once("campaign-store", build)
        return store

    def step_functions(self) -> StepFunctions:
        def build() -> StepFunctions:
            from twilio_messaging.step_functions import StepFunctions

            return StepFunctions(self.aws_client("SFN"))

        client: StepFunctions = self._once("step-functions", build)
        return client

    def delivery_records(self) -> DeliveryRecords:
        def build() -> DeliveryRecords:
            from twilio_messaging.delivery_records import DeliveryRecords

            return DeliveryRecords(self.state_table(), self.settings().message_record_days)

        records: DeliveryRecords = self._once("delivery-records", build)
        return records

    def suppressions(self) -> Suppressions:
        def build() -> Suppressions:
            from twilio_messaging.suppressions import Suppressions

            return Suppressions(self.state_table())

        suppressions: Suppressions = self._once("suppressions", build)
        return suppressions

    def event_bus(self) -> EventBus:
        def build() -> EventBus:
            from twilio_messaging.event_bus import EventBus

            return EventBus(self.settings().event_bus_name, self.aws_client("EVENTBRIDGE"))

        bus: EventBus = self._once("event-bus", build)
        return bus

    def message_queue(self) -> MessageQueue:
        """SendMessage to SQS: the send queue's delayed copies and dead letters."""

        def build() -> MessageQueue:
            from twilio_messaging.message_queue import MessageQueue

            return MessageQueue(self.aws_client("SQS"))

        queue: MessageQueue = self._once("message-queue", build)
        return queue

    def webhook_url(self, request_base_url: str | None, deadline: Deadline) -> str | None:
        """This deployment's webhook URL (the default status callback), or None when none can be known."""

        def build() -> PublicUrl:
            from twilio_messaging.public_url import PublicUrl

            return PublicUrl(self.settings(), lambda: self.aws_client("SSM"))

        public_url: PublicUrl = self._once("public-url", build)
        return public_url.webhook_url(request_base_url, deadline)


environment = ExecutionEnvironment()
