"""The start-up check of the S3 bucket's CORS rules (docs/deploy.md, "The S3 bucket's CORS
rule"): browsers PUT parts to presigned URLs on another origin and must read each part's ETag
for the completion (web/src/net/media.ts), which they can only when a CORS rule allows PUT
and exposes ETag; downloads need a rule that allows GET. A rule that is missing shows up as a
failed upload in somebody's browser much later, so the server says it in one sentence at
start instead. Reading the rules is one GetBucketCors call; a store that does not answer it
(no permission, not implemented) gets one line saying to check by hand, never a failed start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("porch.media")

NO_RULES = "NoSuchCORSConfiguration"
WHERE = 'set it as docs/deploy.md, "The S3 bucket\'s CORS rule", shows'


def _named(rule: Mapping[str, Any], field: str) -> set[str]:
    values = rule.get(field)
    if not isinstance(values, list | tuple):
        return set()
    return {v.strip().lower() for v in values if isinstance(v, str)}


def cors_problems(bucket: str, rules: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """What the bucket's CORS rules (GetBucketCors' CORSRules; None: the bucket has none)
    leave browsers unable to do, one sentence each; empty when uploads and downloads work."""
    if not rules:
        return [
            f"The S3 bucket {bucket} has no CORS rule, so browsers may be refused when they "
            "upload or download attachments (AWS S3 refuses them; SeaweedFS lets any origin "
            f"in until a rule is set); {WHERE}."
        ]
    problems: list[str] = []
    puts = [r for r in rules if "put" in _named(r, "AllowedMethods")]
    if not puts:
        problems.append(
            f"No CORS rule of the S3 bucket {bucket} allows PUT, so browsers cannot upload "
            f"attachments; {WHERE}."
        )
    elif not any(_named(r, "ExposeHeaders") & {"etag", "*"} for r in puts):
        problems.append(
            f"The S3 bucket {bucket}'s CORS rule for PUT does not expose the ETag header, so "
            "browser uploads fail (the browser cannot read the ETag of the parts it sent); add "
            f"ETag to the rule's ExposeHeaders and {WHERE}."
        )
    if not any("get" in _named(r, "AllowedMethods") for r in rules):
        problems.append(
            f"No CORS rule of the S3 bucket {bucket} allows GET, so browsers cannot download "
            f"attachments; {WHERE}."
        )
    return problems


async def read_cors_rules(client: Any, bucket: str) -> list[Mapping[str, Any]] | None:
    """The bucket's CORS rules; None when it has none. Raises ClientError for a store that
    refuses the call."""
    try:
        answer = await client.get_bucket_cors(Bucket=bucket)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) == NO_RULES:
            return None
        raise
    rules = answer.get("CORSRules") or []
    return [r for r in rules if isinstance(r, Mapping)]


async def check_bucket_cors(client: Any, bucket: str) -> list[str]:
    """Log, as warnings, what the bucket's CORS rules keep browsers from doing; the same
    sentences returned. Never raises: the check must not stop a server that works for SDK
    and CLI clients."""
    try:
        rules = await read_cors_rules(client, bucket)
    except (ClientError, BotoCoreError) as exc:
        code = (
            exc.response.get("Error", {}).get("Code", "")
            if isinstance(exc, ClientError)
            else type(exc).__name__
        )
        log.info(
            "Could not read the CORS rules of the S3 bucket %s (%s); check by hand that they "
            "allow PUT and GET from the Porch web origin and expose ETag (docs/deploy.md).",
            bucket,
            code or "no code",
        )
        return []
    problems = cors_problems(bucket, rules)
    for sentence in problems:
        log.warning("%s", sentence)
    return problems
