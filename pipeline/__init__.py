"""agenttrail: tell AI-agent AWS API calls from human ones in CloudTrail.

The package is a pipeline whose stages are its folders:
source -> parse -> warehouse -> attribute -> query -> report.
"""

__version__ = "0.1.0"
