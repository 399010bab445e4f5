"""A campaign's files in the campaign bucket (CAMPAIGN_BUCKET), through boto3's S3 client (S3 is
not a JSON-protocol API; only the campaign functions load it):

    campaigns/<id>/recipients.jsonl      inline recipients, written at the start
    campaigns/<id>/batches.json          the map's items: one per batch
    campaigns/<id>/batches/<n>.json      a batch's recipients with their own content
    campaigns/<id>/skipped.jsonl         the recipients the prepare step skipped
    campaigns/<id>/results/<n>.json      a batch's outcomes, rewritten as it settles them
    reports/<id>.jsonl                   the report: one line per recipient

A recipients file is CSV (a header row with a `to` column; the other columns are variables) or
JSON Lines (one object with `to` per line): `.csv` and `.jsonl`/`.ndjson` say which, else the
first character (`{`: JSON Lines).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from twilio_messaging.errors import AwsServiceUnavailable, ConfigurationError, TwilioMessagingError, ValidationError

HEAD_BYTES = 65536  # read to check a file's first row before a campaign starts
MISSING = ("NoSuchKey", "404", "NotFound")
DENIED = ("AccessDenied", "403", "AllAccessDisabled", "NoSuchBucket", "InvalidAccessKeyId")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def recipients_key(campaign_id: str) -> str:
    return f"campaigns/{campaign_id}/recipients.jsonl"


def items_key(campaign_id: str) -> str:
    return f"campaigns/{campaign_id}/batches.json"


def batch_key(campaign_id: str, index: int) -> str:
    return f"campaigns/{campaign_id}/batches/{index:06d}.json"


def skipped_key(campaign_id: str) -> str:
    return f"campaigns/{campaign_id}/skipped.jsonl"


def results_key(campaign_id: str, index: int) -> str:
    return f"campaigns/{campaign_id}/results/{index:06d}.json"


def report_key(campaign_id: str) -> str:
    return f"reports/{campaign_id}.jsonl"


def parse_s3_uri(uri: str) -> tuple[str, str] | None:
    """`s3://<bucket>/<key>` as the AWS CLI writes it (the key as it is: `?` and `#` are part of
    it), or None. Not urlsplit: it raises on brackets and reads a key's `?` as a query."""
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not BUCKET_NAME.fullmatch(bucket) or not key:
        return None
    return bucket, key


class CampaignFiles:
    def __init__(self, bucket: str, s3_client: Callable[[], Any]) -> None:
        if not bucket:
            raise ConfigurationError("CAMPAIGN_BUCKET is not set")
        self.bucket = bucket
        self._s3 = s3_client

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_json(self, key: str, value: Any) -> None:
        self._put(key, json.dumps(value, separators=(",", ":")).encode(), "application/json")

    def put_lines(self, key: str, lines: list[dict[str, Any]]) -> None:
        body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        self._put(key, body.encode(), "application/x-ndjson")

    def get_json(self, key: str) -> Any | None:
        """The JSON object at `key`, or None when there is none."""
        body = self._get(key)
        return None if body is None else json.loads(body.read())

    def lines(self, key: str) -> Iterator[dict[str, Any]]:
        """The JSON Lines at `key` (none when absent)."""
        body = self._get(key)
        if body is not None:
            for line in io.TextIOWrapper(body, encoding="utf-8"):
                if line.strip():
                    yield json.loads(line)

    def rows(self, key: str) -> Iterator[Any]:
        """The rows of a recipients file: each CSV row as an object keyed by the header, each
        JSON line as it is (a line that is not JSON is a row that is not an object)."""
        body = self._get(key)
        if body is None:
            raise ValidationError.from_problems([{"field": "recipientsUri", "problem": "no such file"}])
        text = codecs.getreader("utf-8-sig")(body, "replace")
        yield from _rows(key, text)

    def check_recipients_file(self, key: str) -> str | None:
        """What makes the file unusable (its first row read), or None."""
        try:
            answer = self._call("get_object", Bucket=self.bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")
        except _Missing:
            return "no such file in the campaign bucket"
        head = answer["Body"].read().decode("utf-8-sig", errors="replace")
        first = next((line for line in head.splitlines() if line.strip()), None)
        if first is None:
            return "the file is empty"
        if _is_json_lines(key, first):
            try:
                row = json.loads(first)
            except ValueError:
                return "the first line is not JSON"
            return None if isinstance(row, dict) and "to" in row else "the first line has no `to`"
        header = [name.strip().lower() for name in next(csv.reader([first]))]
        return None if "to" in header else "the CSV header row has no `to` column"

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        self._call("put_object", Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def _get(self, key: str) -> Any | None:
        try:
            return self._call("get_object", Bucket=self.bucket, Key=key)["Body"]
        except _Missing:
            return None

    def _call(self, operation: str, **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._s3(), operation)(**arguments)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in MISSING:
                raise _Missing() from None
            raise _domain_error(code) from None
        except BotoCoreError as error:
            raise AwsServiceUnavailable(f"the campaign bucket did not answer ({type(error).__name__})") from None


class _Missing(Exception):
    pass


def _domain_error(code: str) -> TwilioMessagingError:
    if code in DENIED:
        return ConfigurationError(f"the campaign bucket cannot be used ({code})")
    return AwsServiceUnavailable(f"the campaign bucket did not answer ({code or 'no code'})", retry_after=1)


def _is_json_lines(key: str, first_line: str) -> bool:
    lowered = key.lower()
    if lowered.endswith(".csv"):
        return False
    return lowered.endswith((".jsonl", ".ndjson")) or first_line.lstrip().startswith("{")


def _rows(key: str, text: Any) -> Iterator[Any]:
    lines = (line for line in text if line.strip())
    first = next(lines, None)
    if first is None:
        return
    if _is_json_lines(key, first):
        for line in _chain(first, lines):
            try:
                yield json.loads(line)
            except ValueError:
                yield None  # skipped as a row that is not an object
        return
    reader = csv.reader(_chain(first, lines))
    header = [name.strip() for name in next(reader)]
    names = ["to" if name.lower() == "to" else name for name in header]
    for values in reader:
        # An empty cell is no value: a placeholder it would fill counts as missing.
        yield {name: value for name, value in zip(names, values, strict=False) if name and value != ""}


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest
