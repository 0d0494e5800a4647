"""THE schema of the `events` table: one line per column, with what it holds.

Partition columns (recipient_account_id, event_date) live in the Hive path, not in the files, as
Athena, Trino and Spark expect; every other column is in each Parquet file. docs and the query
library read the descriptions from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")
REDACTED = "<redacted by agenttrail>"


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("event_id", pa.string(), "CloudTrail eventID; unique in the warehouse."),
    Column("event_time", TIMESTAMP, "eventTime (or @timestamp, see event_time_source), UTC."),
    Column(
        "event_time_source", pa.string(), "Which field gave event_time: eventTime or @timestamp."
    ),
    Column("event_version", pa.string(), "eventVersion, e.g. 1.08."),
    Column("event_source", pa.string(), "eventSource, e.g. s3.amazonaws.com."),
    Column("event_name", pa.string(), "eventName (the API or console action)."),
    Column("event_type", pa.string(), "eventType: AwsApiCall, AwsServiceEvent, AwsMcpEvent, ..."),
    Column("event_category", pa.string(), "eventCategory: Management, Data, NetworkActivity, ..."),
    Column("read_only", pa.bool_(), "readOnly as a boolean."),
    Column("management_event", pa.bool_(), "managementEvent as a boolean."),
    Column("aws_region", pa.string(), "awsRegion."),
    Column("source_ip", pa.string(), "sourceIPAddress (an IP or a service principal)."),
    Column("user_agent", pa.string(), "userAgent."),
    Column("error_code", pa.string(), "errorCode; NULL when the call succeeded (or it was empty)."),
    Column("error_message", pa.string(), "errorMessage."),
    Column("request_id", pa.string(), "requestID; joins MCP tool calls to downstream calls."),
    Column("shared_event_id", pa.string(), "sharedEventID: same event logged in two accounts."),
    Column("vpc_endpoint_id", pa.string(), "vpcEndpointId."),
    Column("vpc_endpoint_account_id", pa.string(), "vpcEndpointAccountId."),
    Column("api_version", pa.string(), "apiVersion."),
    Column(
        "principal_type", pa.string(), "userIdentity.type: IAMUser, AssumedRole, AWSService, ..."
    ),
    Column("principal_id", pa.string(), "userIdentity.principalId."),
    Column("principal_arn", pa.string(), "userIdentity.arn (an assumed-role ARN for sessions)."),
    Column(
        "iam_principal_arn",
        pa.string(),
        "The IAM identity behind the call: the role ARN with its path (from the session issuer) "
        "for assumed roles, the user ARN for users, the account root for Root.",
    ),
    Column("principal_account_id", pa.string(), "userIdentity.accountId."),
    Column("access_key_id", pa.string(), "userIdentity.accessKeyId; NULL when absent or empty."),
    Column("user_name", pa.string(), "userIdentity.userName."),
    Column(
        "invoked_by", pa.string(), "userIdentity.invokedBy: the AWS service that made the call."
    ),
    Column("credential_id", pa.string(), "userIdentity.credentialId."),
    Column(
        "identity_provider",
        pa.string(),
        "userIdentity.identityProvider: the IdP of web-identity and SAML principals.",
    ),
    Column("session_issuer_type", pa.string(), "sessionContext.sessionIssuer.type (Role, ...)."),
    Column("session_issuer_principal_id", pa.string(), "sessionContext.sessionIssuer.principalId."),
    Column("session_issuer_arn", pa.string(), "sessionContext.sessionIssuer.arn."),
    Column("session_issuer_name", pa.string(), "sessionContext.sessionIssuer.userName."),
    Column("session_issuer_account_id", pa.string(), "sessionContext.sessionIssuer.accountId."),
    Column("session_creation_date", TIMESTAMP, "sessionContext.attributes.creationDate, UTC."),
    Column("mfa_authenticated", pa.bool_(), "sessionContext.attributes.mfaAuthenticated."),
    Column("source_identity", pa.string(), "sessionContext.sourceIdentity (persists in chains)."),
    Column("ec2_role_delivery", pa.string(), "sessionContext.ec2RoleDelivery (IMDS version)."),
    Column("web_id_provider", pa.string(), "sessionContext.webIdFederationData.federatedProvider."),
    Column("sign_in_session_arn", pa.string(), "sessionContext.signInSessionArn."),
    Column(
        "on_behalf_of_user_id", pa.string(), "userIdentity.onBehalfOf.userId (Identity Center)."
    ),
    Column(
        "on_behalf_of_identity_store_arn", pa.string(), "userIdentity.onBehalfOf.identityStoreArn."
    ),
    Column(
        "assumed_root",
        pa.bool_(),
        "sessionContext.assumedRoot: TRUE for a short-term root session (sts:AssumeRoot); NULL"
        " where absent, empty or not a flag.",
    ),
    Column(
        "session_credential_from_console",
        pa.bool_(),
        "sessionCredentialFromConsole; TRUE only when the record says so.",
    ),
    Column("tls_version", pa.string(), "tlsDetails.tlsVersion."),
    Column("user_identity", pa.string(), "userIdentity as JSON text."),
    Column(
        "request_parameters",
        pa.string(),
        "requestParameters as JSON text.",
    ),
    Column(
        "response_elements",
        pa.string(),
        "responseElements as JSON text; every sessionToken value is replaced by "
        f"'{REDACTED}' at ingest and never stored.",
    ),
    Column("additional_event_data", pa.string(), "additionalEventData as JSON text."),
    Column("resources", pa.string(), "resources as JSON text."),
    Column("service_event_details", pa.string(), "serviceEventDetails as JSON text."),
    Column("tls_details", pa.string(), "tlsDetails as JSON text."),
    Column("addendum", pa.string(), "addendum as JSON text."),
    Column(
        "extra",
        pa.string(),
        "Every other top-level key of the record (edgeDeviceDetails, eventContext, SIEM fields "
        "such as @timestamp) as one JSON object; NULL when there is none.",
    ),
    Column("source_uri", pa.string(), "s3://bucket/key or file:// path of the source object."),
    Column(
        "source_sha256", pa.string(), "SHA-256 (hex) of the source object's decompressed bytes."
    ),
    Column("source_record_index", pa.int32(), "Position of the record in its source object."),
    Column("ingest_run_id", pa.string(), "The ingest run that wrote the row."),
)

PARTITION_COLUMNS: tuple[Column, ...] = (
    Column(
        "recipient_account_id",
        pa.string(),
        "recipientAccountId; for records without it (eventVersion < 1.02), the account of the "
        "S3 key, else 'unknown'. Hive partition key.",
    ),
    Column("event_date", pa.date32(), "UTC date of event_time. Hive partition key."),
)

FILE_SCHEMA = pa.schema([pa.field(c.name, c.type) for c in COLUMNS])
STAGED_SCHEMA = pa.schema([*FILE_SCHEMA, *(pa.field(c.name, c.type) for c in PARTITION_COLUMNS)])


def describe(name: str) -> str:
    """The description of an events column (events and partition columns)."""
    for column in (*COLUMNS, *PARTITION_COLUMNS):
        if column.name == name:
            return column.description
    raise KeyError(name)
