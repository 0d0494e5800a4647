"""User-agent markers: which client made a call. Data, with where each marker comes from.

Order matters (lower priority wins): MCP markers first, because awslabs MCP servers append
theirs to an `aws-cli/` or `Boto3/` string (facts doc s.4); then the console, IaC tools (which
use the SDKs underneath), the CLI, SDKs, and AWS services. Patterns are SQL LIKE patterns,
matched inside the square brackets S3 writes around the user agents it logs
(`[aws-cli/1.18.136 ...]`, seen in OTRF records; `[Boto3/...]`, `[S3Console/0.4 ...]`, seen in
public S3 records): 40_user_agents.sql removes them first.
A user agent is a hint, not proof: clients can set any string. "AWS Internal" is no marker: AWS
writes it for calls made inside AWS (by the console's back end or a service), so it names no
client of the caller, and taken for the console it turned an agent role's call into a person's.
"""

from __future__ import annotations

# (priority, client, LIKE pattern, source)
USER_AGENT_MARKERS: tuple[tuple[int, str, str, str], ...] = (
    (10, "mcp", "%md/awslabs#mcp#%", "awslabs/mcp source: current user-agent suffix"),
    (11, "mcp", "%awslabs/mcp/%", "awslabs/mcp source: legacy user-agent suffix"),
    (12, "mcp", "%-mcp.amazonaws.com", "managed MCP downstream calls (facts doc s.4, seen)"),
    (13, "mcp", "claude-code/%", "MCP client of AwsMcpEvent records (seen)"),
    (14, "mcp", "mcp-proxy-for-aws/%", "MCP client of AwsMcpEvent records (seen)"),
    (15, "mcp", "%mcp-client%", "generic MCP clients"),
    (20, "console", "console.%amazonaws.com", "service consoles (seen in OTRF records)"),
    (21, "console", "%ConsoleFrontend%", "EC2 console back end (seen in OTRF records)"),
    (22, "console", "signin.amazonaws.com", "console sign-in"),
    (23, "console", "Mozilla/%", "browsers (console sign-in and console API calls)"),
    (24, "console", "S3Console/%", "S3 console (seen in public S3 records, bracketed)"),
    (30, "iac", "%Terraform/%", "HashiCorp Terraform AWS provider"),
    (31, "iac", "%terraform-provider-aws/%", "HashiCorp Terraform AWS provider"),
    (32, "iac", "%aws-cdk/%", "AWS CDK"),
    (33, "iac", "%pulumi%", "Pulumi"),
    (34, "iac", "%aws-sam-cli/%", "AWS SAM CLI"),
    (35, "iac", "%exec-env/AWS_CloudFormation%", "CloudFormation custom resources"),
    (40, "cli", "aws-cli/%", "AWS CLI v1 and v2"),
    (42, "cli", "%md/command#%", "AWS CLI v2 command metadata"),
    (50, "sdk", "Boto3/%", "AWS SDK for Python"),
    (51, "sdk", "Botocore/%", "botocore"),
    (52, "sdk", "aws-sdk-%", "AWS SDKs for Java, Go, JavaScript, .NET, Ruby, PHP, Rust"),
    (53, "sdk", "%lang/python#%", "SDK metadata of the modern user-agent format"),
    (54, "sdk", "aws-internal/%", "SDKs inside AWS services"),
    (60, "service", "%.amazonaws.com", "AWS service principals as user agent (documented)"),
)
