"""IAM inventory: the role tags, boundaries and policies that CloudTrail records never carry.

Role tags such as `Usage=Agent` decide whether a principal is an agent (facts doc s.3), and they
exist only in IAM. This package reads `aws iam get-account-authorization-details` output
(load.py), takes the same snapshot live (snapshot.py, client.py), keeps every snapshot in the
warehouse (store.py, schema.py) and picks the one that applies to a period (choice.py).
"""
