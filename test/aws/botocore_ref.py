"""Reference EKS tokens from botocore + awscli's own TokenGenerator, with the signing clock frozen.

stdin: JSON list of {time, accessKeyId, secretAccessKey, sessionToken?, region, clusterName?, clusterId?}
stdout: JSON list of tokens (same order).
"""
import datetime
import json
import sys

import botocore.auth
import botocore.session
from awscli.customizations.eks.get_token import STSClientFactory, TokenGenerator

cases = json.load(sys.stdin)
tokens = []
for case in cases:
    fixed = datetime.datetime.strptime(case["time"], "%Y-%m-%dT%H:%M:%SZ")
    botocore.auth.get_current_datetime = lambda remove_tzinfo=True, fixed=fixed: fixed
    session = botocore.session.Session()
    session.set_credentials(case["accessKeyId"], case["secretAccessKey"], case.get("sessionToken"))
    client = STSClientFactory(session).get_sts_client(region_name=case["region"])
    tokens.append(TokenGenerator(client).get_token(case.get("clusterId") or case["clusterName"]))
print(json.dumps(tokens))
