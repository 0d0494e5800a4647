-- name: destructive_agent_calls
-- description: Did an agent delete, terminate, change permissions or blind the logs? Lists every
--   call made by an agent (any access path) whose eventName matches the list in the patterns CTE
--   below, succeeded or not: a denied attempt matters as much as a success. Categories: logging
--   (CloudTrail, flow logs, Config, GuardDuty, Security Hub switched off or narrowed), key (KMS key
--   deletion scheduled or key disabled), permission (IAM and resource policies, grants,
--   security-group rules, access keys), terminate, delete (any other Delete*). When several
--   patterns match, the lowest priority wins (logging before key, permission, terminate, delete).
--   Columns: event_time (UTC), event_id, category, matched_pattern, agent_name, access_path,
--   principal (the role or user ARN), human_id, account (recipientAccountId), aws_region,
--   event_source, event_name, error_code (NULL when the call succeeded), classified_by and
--   request_parameters (JSON text, what was targeted).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per destructive call made by an agent
-- used_by: analysts; quarterly report (later)
WITH patterns (priority, category, event_source_pattern, event_name_pattern) AS (
    -- eventName LIKE patterns; extend here. Versioned Lambda names (DeleteFunction20150331)
    -- match through the trailing %.
    VALUES
        (1, 'logging', 'cloudtrail.amazonaws.com', 'StopLogging'),
        (1, 'logging', 'cloudtrail.amazonaws.com', 'DeleteTrail'),
        (1, 'logging', 'cloudtrail.amazonaws.com', 'UpdateTrail'),
        (1, 'logging', 'cloudtrail.amazonaws.com', 'PutEventSelectors'),
        (1, 'logging', 'cloudtrail.amazonaws.com', 'PutInsightSelectors'),
        (1, 'logging', 'cloudtrail.amazonaws.com', 'DeleteEventDataStore'),
        (1, 'logging', 'cloudtrail.amazonaws.com', 'StopEventDataStoreIngestion'),
        (1, 'logging', 'ec2.amazonaws.com', 'DeleteFlowLogs'),
        (1, 'logging', 'logs.amazonaws.com', 'DeleteLogGroup'),
        (1, 'logging', 'logs.amazonaws.com', 'DeleteLogStream'),
        (1, 'logging', 'logs.amazonaws.com', 'PutRetentionPolicy'),
        (1, 'logging', 'logs.amazonaws.com', 'DeleteSubscriptionFilter'),
        (1, 'logging', 'config.amazonaws.com', 'StopConfigurationRecorder'),
        (1, 'logging', 'config.amazonaws.com', 'DeleteConfigurationRecorder'),
        (1, 'logging', 'config.amazonaws.com', 'DeleteDeliveryChannel'),
        (1, 'logging', 'guardduty.amazonaws.com', 'DeleteDetector'),
        (1, 'logging', 'guardduty.amazonaws.com', 'UpdateDetector'),
        (1, 'logging', 'securityhub.amazonaws.com', 'DisableSecurityHub'),
        (1, 'logging', 's3.amazonaws.com', 'PutBucketLogging'),
        (2, 'key', 'kms.amazonaws.com', 'ScheduleKeyDeletion'),
        (2, 'key', 'kms.amazonaws.com', 'DisableKey'),
        (2, 'key', 'kms.amazonaws.com', 'DisableKeyRotation'),
        (2, 'key', 'kms.amazonaws.com', 'DeleteImportedKeyMaterial'),
        (2, 'key', 'kms.amazonaws.com', 'PutKeyPolicy'),
        (2, 'key', 'kms.amazonaws.com', 'CreateGrant'),
        (3, 'permission', 'iam.amazonaws.com', 'Put%Policy'),
        (3, 'permission', 'iam.amazonaws.com', 'Attach%Policy'),
        (3, 'permission', 'iam.amazonaws.com', 'Detach%Policy'),
        (3, 'permission', 'iam.amazonaws.com', 'Delete%Policy'),
        (3, 'permission', 'iam.amazonaws.com', 'CreatePolicyVersion'),
        (3, 'permission', 'iam.amazonaws.com', 'SetDefaultPolicyVersion'),
        (3, 'permission', 'iam.amazonaws.com', 'UpdateAssumeRolePolicy'),
        (3, 'permission', 'iam.amazonaws.com', 'Put%PermissionsBoundary'),
        (3, 'permission', 'iam.amazonaws.com', 'Delete%PermissionsBoundary'),
        (3, 'permission', 'iam.amazonaws.com', 'AddUserToGroup'),
        (3, 'permission', 'iam.amazonaws.com', 'AddRoleToInstanceProfile'),
        (3, 'permission', 'iam.amazonaws.com', 'CreateAccessKey'),
        (3, 'permission', 'iam.amazonaws.com', 'CreateLoginProfile'),
        (3, 'permission', 'iam.amazonaws.com', 'UpdateLoginProfile'),
        (3, 'permission', '%', 'PutBucketPolicy'),
        (3, 'permission', '%', 'PutBucketAcl'),
        (3, 'permission', '%', 'PutObjectAcl'),
        (3, 'permission', '%', 'PutBucketPublicAccessBlock'),
        (3, 'permission', '%', 'DeletePublicAccessBlock'),
        (3, 'permission', '%', 'DeleteBucketPublicAccessBlock'),
        (3, 'permission', '%', 'PutResourcePolicy'),
        (3, 'permission', '%', 'SetRepositoryPolicy'),
        (3, 'permission', '%', 'AddPermission%'),
        (3, 'permission', '%', 'RemovePermission%'),
        (3, 'permission', 'ec2.amazonaws.com', 'AuthorizeSecurityGroup%'),
        (3, 'permission', 'ec2.amazonaws.com', 'RevokeSecurityGroup%'),
        (3, 'permission', 'ec2.amazonaws.com', 'ModifySnapshotAttribute'),
        (3, 'permission', 'ec2.amazonaws.com', 'ModifyImageAttribute'),
        (4, 'terminate', '%', 'Terminate%'),
        (5, 'delete', '%', 'Delete%')
),

agent_events AS (
    SELECT
        event_time,
        event_id,
        agent_name,
        access_path,
        principal,
        human_id,
        recipient_account_id AS account,
        aws_region,
        event_source,
        event_name,
        error_code,
        classified_by,
        request_parameters
    FROM events_classified
    WHERE actor_kind = 'agent'
        AND ($since IS NULL OR event_time >= $since)
        AND ($until IS NULL OR event_time < $until)
        AND ($account IS NULL OR recipient_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (principal, principal_arn, agent_name, human_id)
        )
),

agent_action_names AS (
    SELECT DISTINCT event_source, event_name FROM agent_events
),

matched_actions AS (
    -- Patterns are matched once per distinct action, not once per event.
    SELECT
        a.event_source,
        a.event_name,
        p.category,
        p.event_name_pattern AS matched_pattern,
        row_number() OVER (
            PARTITION BY a.event_source, a.event_name ORDER BY p.priority, p.event_name_pattern
        ) AS match_rank
    FROM agent_action_names AS a
    JOIN patterns AS p
        ON a.event_source LIKE p.event_source_pattern
        AND a.event_name LIKE p.event_name_pattern
),

final AS (
    SELECT
        e.event_time,
        e.event_id,
        m.category,
        m.matched_pattern,
        e.agent_name,
        e.access_path,
        e.principal,
        e.human_id,
        e.account,
        e.aws_region,
        e.event_source,
        e.event_name,
        e.error_code,
        e.classified_by,
        e.request_parameters
    FROM agent_events AS e
    JOIN matched_actions AS m
        ON m.event_source = e.event_source
        AND m.event_name = e.event_name
        AND m.match_rank = 1
)

SELECT * FROM final
ORDER BY event_time, event_id;
