"""The webhook as most teams would write it, for the benchmarks only: the `twilio` package's
RequestValidator and boto3 (imported, and the clients built, at module level). It makes the same
AWS calls as ours for the same status callback: a conditional PutItem that claims it, a
conditional UpdateItem that moves the message's delivery record forward, for a final status an
UpdateItem that records it for a waiting task, PutEvents, an UpdateItem that marks the record's
event published, and an UpdateItem that marks the claim done.
"""

import json
import os
import time
from typing import Any
from urllib.parse import parse_qsl

import boto3
from twilio.request_validator import RequestValidator

secrets = boto3.client("secretsmanager")
dynamodb = boto3.client("dynamodb")
events = boto3.client("events")
_validator = None

FINAL = {"delivered", "read", "undelivered", "failed", "canceled"}
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def validator() -> RequestValidator:
    global _validator
    if _validator is None:
        secret = json.loads(secrets.get_secret_value(SecretId=os.environ["TWILIO_SECRET_ID"])["SecretString"])
        _validator = RequestValidator(secret["authToken"])
    return _validator


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    url = f"https://{event['requestContext']['domainName']}{event['requestContext']['path']}"
    params = dict(parse_qsl(event.get("body") or "", keep_blank_values=True))
    if not validator().validate(url, params, headers.get("x-twilio-signature", "")):
        return {"statusCode": 403, "body": "invalid signature"}

    table = os.environ["STATE_TABLE_NAME"]
    key = {"id": {"S": "webhook#" + (headers.get("i-twilio-idempotency-token") or params.get("MessageSid", ""))}}
    try:
        dynamodb.put_item(
            TableName=table,
            Item={**key, "status": {"S": "IN_PROGRESS"}, "expiration": {"N": str(int(time.time()) + 7 * 86400)}},
            ConditionExpression="attribute_not_exists(id)",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return {"statusCode": 200, "headers": {"Content-Type": "text/xml"}, "body": TWIML}
    status = params.get("MessageStatus")
    record = {"id": {"S": "message#" + params.get("MessageSid", "")}}
    if status:
        dynamodb.update_item(
            TableName=table,
            Key=record,
            UpdateExpression="SET #status = :status, unpublished = :yes, "
            "history = list_append(if_not_exists(history, :empty), :entry)",
            ConditionExpression="attribute_not_exists(#status) OR #status <> :status",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":status": {"S": status},
                ":yes": {"BOOL": True},
                ":empty": {"L": []},
                ":entry": {"L": [{"M": {"status": {"S": status}, "at": {"N": str(time.time())}}}]},
            },
        )
    if status in FINAL:
        dynamodb.update_item(
            TableName=table,
            Key={"id": {"S": "task#" + params.get("MessageSid", "")}},
            UpdateExpression="SET final_status = if_not_exists(final_status, :status)",
            ExpressionAttributeValues={":status": {"S": json.dumps(params)}},
            ReturnValues="ALL_NEW",
        )
    events.put_events(
        Entries=[
            {
                "Source": "twilio.messaging",
                "DetailType": "Message Status Changed" if status else "Message Received",
                "Detail": json.dumps(params),
                "EventBusName": os.environ.get("EVENT_BUS_NAME", "default"),
            }
        ]
    )
    if status:
        dynamodb.update_item(TableName=table, Key=record, UpdateExpression="REMOVE unpublished")
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #status = :done",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":done": {"S": "COMPLETED"}},
    )
    return {"statusCode": 200, "headers": {"Content-Type": "text/xml"}, "body": TWIML}
