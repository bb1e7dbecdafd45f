#!/usr/bin/env python3
"""Checks template.yaml against the code, for what cfn-lint and `sam validate --lint` miss.

Run from the repository root:  python scripts/check_template.py
Needs PyYAML (in the test venv: .tools/venv/bin/python scripts/check_template.py) and a built
local server: the code's side comes from `callbridge-local describe` (JSON), run from
$CALLBRIDGE_LOCAL_BIN if set, else $CARGO_TARGET_DIR/debug/callbridge-local, else
target/debug/callbridge-local (build it first: cargo build -p callbridge-local; the suite
builds every binary before this script runs).
Prints one line per check and, last, `N passed, M failed` alone on a line; exits 1 on failure.
`--template PATH` and `--sam-env PATH` check other files (used to show that each check fails).

What it checks (resource types, property shapes, Fn::GetAtt, Fn::Sub and Outputs are left to
cfn-lint, which runs before it in the suite):
- every Ref in Globals and Resources names a parameter or resource (cfn-lint 1.58 misses
  some inside SAM resources, e.g. in environment variables);
- each function is built with cargo-lambda from a [[bin]] of a workspace crate under functions/,
  one function per binary describe names;
- the HttpApi routes are exactly describe's routes (method, path, function); no route has an
  authorizer (the functions authenticate: Stream's credentials, or the providers' secret
  header and signature on the webhook routes); integrations written in the HttpApi's
  DefinitionBody (create-call's) are the route's, and name its function by its fixed
  FunctionName;
- no circular dependency between resources in SAM's output (cfn-lint 1.58 and `sam validate
  --lint` miss the one a function's environment naming the API makes, through the API's
  integrations);
- HMS_WEBHOOK_URL: create-call's is the API's own URL + the 100ms webhook route when
  HmsWebhookSecret is given, else empty; the other functions' empty; HMS_WEBHOOK_SECRET and
  AGORA_NCS_SECRET come from their parameters;
- IAM: inline statements only, exactly the DynamoDB actions describe lists for each function,
  on the table;
- environment: every variable describe lists is set for each function, except the deliberate
  cloud omissions below, and nothing else is set (no typos); every variable holding a secret
  (*_SECRET, *_CERTIFICATE) comes from a NoEcho parameter;
- parameters: MaxCallSeconds accepts exactly what the code accepts for
  CALLBRIDGE_MAX_CALL_SECONDS (0, or 60 to 86400);
- timeouts: each function's Timeout is below the HTTP API's 30 s integration limit, so a slow
  request is answered by the function rather than cut off;
- tests/sam-env.json has, for each function, exactly the template's variables;
- the table: key and TTL attribute (describe's), billing, point-in-time recovery, Retain
  policies;
- tracing: Globals' Tracing is the Tracing parameter (Active or PassThrough), and what SAM makes
  of it: each generated role has exactly two AWS managed policies, AWSLambdaBasicExecutionRole
  (logs) and AWSXrayWriteOnlyAccess (which SAM adds for Tracing), besides the inline
  DynamoDB statements above;
- logs: each function logs JSON to a log group of its own, declared in the template with the
  LogRetentionDays retention and explicit deletion policies; the API's access logs go, when
  ApiAccessLogs is true, to their own group with the same retention, as one JSON object per
  request with the fields README names (and no request path: call ids are capabilities);
- alarms: each exists only when alarms are on, notifies the alarm topic (AlarmTopicArn, else
  the topic created for AlarmEmail) on alarm and on OK, takes its threshold from an Alarm*
  parameter and watches exactly the metrics expected_alarms() lists, on the right function
  or API (the Operation dimension is describe's operation name of the function's route);
  every template parameter and application metric is named in README.
SAM's side (the merged LoggingConfig, the roles) comes from translating the template with the
pinned aws-sam-translator, offline, as `sam validate` does.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import unittest
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

import yaml

ROOT = Path(__file__).resolve().parent.parent
PATHS = {
    "template": ROOT / "template.yaml",
    "sam_env": ROOT / "tests" / "sam-env.json",
    "functions": ROOT / "functions",
    "workspace": ROOT / "Cargo.toml",
}

# Variables of config.rs VARIABLES that the template deliberately does not set in the cloud.
# HMS_API_BASE_URL and AGORA_API_BASE_URL only point the tests at mock 100ms and Agora RESTful
# servers; unset, the code uses the real APIs. (CALLBRIDGE_ALLOW_DEV_TOKENS is not here: the
# template sets it to "false".)
LEFT_OUT_IN_CLOUD = {"HMS_API_BASE_URL", "AGORA_API_BASE_URL"}

# What config.rs accepts for CALLBRIDGE_MAX_CALL_SECONDS (MIN_DURATION_SECS, MAX_DURATION_SECS
# of domain/call.rs; 0 is no limit), which the MaxCallSeconds parameter must accept exactly.
MAX_CALL_SECONDS = (60, 86400)

# API Gateway HTTP APIs wait at most 30 s for an integration.
HTTP_API_TIMEOUT_SECONDS = 30

# Variables the template must set to exactly this value.
FIXED_VALUES = {"CALLBRIDGE_ALLOW_DEV_TOKENS": "false"}

# The functions also need the table name (lambda/src/init.rs refuses to start without it).
LAMBDA_EXTRA = {"CALLBRIDGE_TABLE_NAME"}

TABLE = "CallsTable"

README = ROOT / "README.md"

# The managed policies SAM attaches to each function's role: its default for logs, and the X-Ray
# policy it adds because Tracing is set (xray:PutTraceSegments, PutTelemetryRecords and the
# sampling reads; no access to data). Pinned so that a SAM property that widens the role
# (VpcConfig, a policy name in Policies, ...) fails here.
MANAGED_POLICIES = [
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
]

# CloudWatch Logs' retention values (AWS::Logs::LogGroup RetentionInDays).
RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                  2192, 2557, 2922, 3288, 3653]

# Access log fields (README, Deployment) and the $context variable each must hold.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "protocol": "$context.protocol",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationErrorMessage": "$context.integrationErrorMessage",
    "errorMessage": "$context.error.message",
    "apiId": "$context.apiId",
}

# The application's own metrics (embedded metric format, written by the functions) and the one
# the access log metric filter makes: namespace, name -> dimension names. README, Deployment,
# Metrics, is the contract with the code.
APP_NAMESPACE = "Callbridge"
APP_METRICS = {
    "ProviderFailures": ["FunctionName", "Provider"],
    "Throttled": ["FunctionName", "Operation"],
    # Not alarmed (counts of normal events), but dashboards read them: pinned like the others.
    "CallsEnded": ["FunctionName", "Provider", "Reason"],
    "ProviderEvents": ["FunctionName", "Provider", "Result"],
}
FILTER_METRICS = {"ApiThrottled": ["ApiId"]}

# The API's own URL, as the template writes it (Outputs, ApiUrl) and passes it to create-call.
API_URL = "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"

ALARM_TOPIC = {"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}


# --- YAML with CloudFormation short tags -------------------------------------------------

class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags into their long form."""


def _construct(loader, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _add_tag(tag, build):
    CfnLoader.add_constructor("!" + tag, lambda loader, node: build(_construct(loader, node)))


_add_tag("Ref", lambda v: {"Ref": v})
_add_tag("Condition", lambda v: {"Condition": v})
_add_tag("GetAtt", lambda v: {"Fn::GetAtt": v.split(".", 1) if isinstance(v, str) else v})
for _fn in ["Sub", "If", "Equals", "Not", "Join", "Select", "Split", "FindInMap", "And", "Or",
            "Base64", "ImportValue", "GetAZs", "Cidr"]:
    _add_tag(_fn, lambda v, _fn=_fn: {"Fn::" + _fn: v})


def load_template(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)


# --- The code's side ---------------------------------------------------------------------

class DescribeError(Exception):
    pass


def local_bin():
    if os.environ.get("CALLBRIDGE_LOCAL_BIN"):
        return Path(os.environ["CALLBRIDGE_LOCAL_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else ROOT / "target") / "debug" / "callbridge-local"


_DESCRIBED = {}


def describe():
    """`callbridge-local describe`, parsed (run once)."""
    if "doc" in _DESCRIBED:
        return _DESCRIBED["doc"]
    binary = local_bin().absolute()
    if not binary.is_file():
        raise DescribeError(f"{binary} not found; build it first: cargo build -p callbridge-local "
                            "(or set CALLBRIDGE_LOCAL_BIN)")
    try:
        run = subprocess.run([str(binary), "describe"], capture_output=True, text=True,
                             timeout=60)
    except OSError as e:
        raise DescribeError(f"cannot run {binary} describe: {e}") from e
    if run.returncode != 0:
        raise DescribeError(f"{binary} describe exited {run.returncode} (an old build? "
                            f"rebuild: cargo build -p callbridge-local): {run.stderr.strip()}")
    try:
        doc = json.loads(run.stdout)
        facts = {
            "routes": {(r["method"], r["path"]): r["function"] for r in doc["routes"]},
            # Binary -> the operation it serves (the Operation dimension of its metrics).
            "operations": {r["function"]: r["operation"] for r in doc["routes"]},
            "variables": set(doc["variables"]),
            "key": doc["dynamodb"]["key"],
            "ttl_attribute": doc["dynamodb"]["ttl_attribute"],
            # Binary -> the IAM actions it needs on the table.
            "actions": {f: set(a) for f, a in doc["dynamodb"]["actions"].items()},
            # The functions' metrics: namespace, and metric -> its dimensions.
            "metrics": doc["metrics"],
        }
    except (ValueError, KeyError, TypeError) as e:
        raise DescribeError(f"{binary} describe printed no valid description "
                            f"({type(e).__name__}: {e}): {run.stdout[:200]!r}") from e
    _DESCRIBED["doc"] = facts
    return facts


def read_toml(path):
    text = path.read_text(encoding="utf-8")
    if tomllib is not None:
        return tomllib.loads(text)
    # Minimal fallback: package name, [[bin]] names, workspace members.
    data = {}
    pkg = re.search(r'^\[package\][^\[]*?^name\s*=\s*"([^"]+)"', text, re.M | re.S)
    if pkg:
        data["package"] = {"name": pkg.group(1)}
    bins = re.findall(r'^\[\[bin\]\][^\[]*?^name\s*=\s*"([^"]+)"', text, re.M | re.S)
    if bins:
        data["bin"] = [{"name": b} for b in bins]
    members = re.search(r"^members\s*=\s*\[(.*?)\]", text, re.M | re.S)
    if members:
        data["workspace"] = {"members": re.findall(r'"([^"]+)"', members.group(1))}
    return data


def workspace_binaries():
    """Binary names of the workspace crates under functions/, mapped to their crate folder."""
    members = read_toml(PATHS["workspace"]).get("workspace", {}).get("members", [])
    member_dirs = {(ROOT / m).resolve() for m in members}
    bins = {}
    for cargo in sorted(PATHS["functions"].glob("**/Cargo.toml")):
        if "target" in cargo.parts or cargo.parent.resolve() not in member_dirs:
            continue
        data = read_toml(cargo)
        names = {b["name"] for b in data.get("bin", []) if "name" in b}
        if not names and "package" in data:
            names = {data["package"]["name"]}  # the default binary takes the package name
        for name in names:
            bins[name] = cargo.parent.relative_to(ROOT).as_posix()
    return bins


# --- Template helpers --------------------------------------------------------------------

def functions(t):
    return {k: r for k, r in t.get("Resources", {}).items()
            if r.get("Type") == "AWS::Serverless::Function"}


def effective_env(t, logical_id):
    glob = (((t.get("Globals") or {}).get("Function") or {}).get("Environment") or {})
    own = (functions(t)[logical_id].get("Properties") or {}).get("Environment") or {}
    env = dict(glob.get("Variables") or {})
    env.update(own.get("Variables") or {})
    return env


def binary_of(resource):
    return ((resource.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")


def as_list(v):
    return v if isinstance(v, list) else [v]


def refs(node, path):
    """(path, name) of every {"Ref": name} below node."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and isinstance(node["Ref"], str):
            return [(path, node["Ref"])]
        return [r for k, v in node.items() for r in refs(v, f"{path}/{k}")]
    if isinstance(node, list):
        return [r for i, v in enumerate(node) for r in refs(v, f"{path}/{i}")]
    return []


def dependencies(node):
    """Logical ids a CloudFormation value refers to (Ref, Fn::GetAtt, ${X} and ${X.Attr} in
    Fn::Sub), pseudo parameters included."""
    out = set()
    if isinstance(node, dict):
        if isinstance(node.get("Ref"), str):
            out.add(node["Ref"])
        att = node.get("Fn::GetAtt")
        if att is not None:
            out.add(att[0] if isinstance(att, list) else str(att).split(".")[0])
        sub = node.get("Fn::Sub")
        if sub is not None:
            text = sub if isinstance(sub, str) else sub[0]
            local = set(sub[1]) if isinstance(sub, list) and len(sub) > 1 else set()
            out |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!][^}]*)\}", text)} - local
        for v in node.values():
            out |= dependencies(v)
    elif isinstance(node, list):
        for v in node:
            out |= dependencies(v)
    return out


def cycles(resources):
    """Circular dependencies among CloudFormation resources, as lists of logical ids."""
    graph = {}
    for name, res in resources.items():
        depends = res.get("DependsOn") or []
        depends = set(as_list(depends))
        graph[name] = {d for d in dependencies(res.get("Properties") or {}) | depends
                       if d in resources}
    found, state = [], {}

    def visit(n, stack):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m, stack)
        stack.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n, [])
    return found


def sam_translate(t):
    """The CloudFormation template SAM makes of t (offline; the code URI is replaced by an S3
    placeholder, as `sam package` would)."""
    import copy
    try:
        import boto3
        from samtranslator.parser.parser import Parser
        from samtranslator.translator.translator import Translator
    except ImportError as e:
        raise AssertionError(f"aws-sam-translator is missing ({e}): run with the test venv's "
                             "python (.tools/venv/bin/python)") from e
    t = copy.deepcopy(t)
    for res in functions(t).values():
        if "CodeUri" in (res.get("Properties") or {}):
            res["Properties"]["CodeUri"] = "s3://bucket/key"
    glob = (t.get("Globals") or {}).get("Function") or {}
    if "CodeUri" in glob:
        glob["CodeUri"] = "s3://bucket/key"
    session = boto3.session.Session(region_name="us-east-1")
    return Translator({}, Parser(), boto_session=session).translate(
        t, parameter_values={}, get_managed_policy_map=lambda: {})


def alarm_metrics(alarm):
    """(namespace, metric name, dimensions as a dict, statistic) of every metric an alarm reads,
    and the expression it alarms on (None without metric math)."""
    p = alarm.get("Properties") or {}
    dims = lambda ds: {d.get("Name"): d.get("Value") for d in ds or []}  # noqa: E731
    if "Metrics" not in p:
        stat = p.get("Statistic") or p.get("ExtendedStatistic")
        return [(p.get("Namespace"), p.get("MetricName"), dims(p.get("Dimensions")), stat)], None
    metrics, expressions = [], []
    for m in p["Metrics"]:
        if "Expression" in m:
            if m.get("ReturnData", True):
                expressions.append(m["Expression"])
            continue
        if m.get("ReturnData", True):
            expressions.append(f"metric {m.get('Id')} (ReturnData)")
        stat = m.get("MetricStat") or {}
        metric = stat.get("Metric") or {}
        metrics.append((metric.get("Namespace"), metric.get("MetricName"),
                        dims(metric.get("Dimensions")), stat.get("Stat")))
    return metrics, expressions


# --- The checks --------------------------------------------------------------------------

class TemplateChecks(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.t = load_template(PATHS["template"])
        cls.params = set((cls.t.get("Parameters") or {}).keys())
        cls.resources = cls.t.get("Resources") or {}
        cls.functions = functions(cls.t)
        cls.code = describe()
        cls.variables = cls.code["variables"]
        cls.cfn = sam_translate(cls.t)
        cls.cfn_resources = cls.cfn.get("Resources") or {}
        cls.conditions = cls.t.get("Conditions") or {}

    # references

    def test_refs_in_globals_and_resources_name_parameters_or_resources(self):
        # Not a duplicate of cfn-lint (1.58): on this SAM template it lets a Ref to an unknown
        # name pass in a function's environment variables and in the HttpApi's
        # CorsConfiguration. Fn::GetAtt / Fn::Sub / Outputs are left to cfn-lint.
        known = self.params | set(self.resources)
        bad = [f"{path}: Ref {name} names no parameter or resource"
               for path, name in refs(self.t.get("Globals") or {}, "Globals")
               + refs(self.resources, "Resources")
               if not name.startswith("AWS::") and name not in known]
        self.assertEqual(bad, [])

    # build

    def test_functions_build_workspace_binaries(self):
        bins = workspace_binaries()
        self.assertTrue(bins, "no binaries found under functions/")
        seen = []
        for name, res in self.functions.items():
            meta = res.get("Metadata") or {}
            self.assertEqual(meta.get("BuildMethod"), "rust-cargolambda", name)
            binary = binary_of(res)
            self.assertIn(binary, bins, f"{name}: Binary {binary!r} is not a [[bin]] under "
                                        f"functions/ (known: {sorted(bins)})")
            seen.append(binary)
        self.assertEqual(sorted(seen), sorted(set(self.code["routes"].values())),
                         "one function per binary")

    def test_function_runtime_settings(self):
        for name in self.functions:
            props = self.effective_properties(name)
            self.assertEqual(props.get("Runtime"), "provided.al2023", name)
            self.assertEqual(props.get("Architectures"), ["arm64"], name)
            self.assertEqual(props.get("Handler"), "bootstrap", name)
            self.assertEqual(props.get("CodeUri"), ".", name)

    # routes

    def test_routes_match_the_code(self):
        expected = self.code["routes"]
        apis = {k for k, r in self.resources.items() if r.get("Type") == "AWS::Serverless::HttpApi"}
        routes = {}
        for name, res in self.functions.items():
            events = (res.get("Properties") or {}).get("Events") or {}
            for ev_name, ev in events.items():
                where = f"{name}/Events/{ev_name}"
                self.assertEqual(ev.get("Type"), "HttpApi", where)
                props = ev.get("Properties") or {}
                api_id = props.get("ApiId")
                self.assertIsInstance(api_id, dict, f"{where}: ApiId must Ref the HttpApi")
                self.assertIn(api_id.get("Ref"), apis, f"{where}: ApiId")
                key = (str(props.get("Method", "")).upper(), props.get("Path"))
                self.assertNotIn(key, routes, f"{where}: route {key} declared twice")
                routes[key] = binary_of(res)
        self.assertEqual(routes, expected)

    def test_no_route_has_an_authorizer(self):
        # The webhook routes must reach provider-events unauthenticated by API Gateway (the
        # providers send no Stream credentials); the others authenticate in the function too.
        api = (self.resources.get("HttpApi") or {}).get("Properties") or {}
        self.assertNotIn("Auth", api, "HttpApi: Auth (authorizers)")
        webhooks = {k for k, b in self.code["routes"].items()
                    if self.code["operations"].get(b) == "ProviderEvent"}
        self.assertEqual({p for _, p in webhooks}, {"/webhooks/100ms", "/webhooks/agora"})
        seen = set()
        for name, res in self.functions.items():
            for ev_name, ev in ((res.get("Properties") or {}).get("Events") or {}).items():
                props = ev.get("Properties") or {}
                self.assertNotIn("Auth", props, f"{name}/Events/{ev_name}: Auth")
                seen.add((str(props.get("Method", "")).upper(), props.get("Path")))
        self.assertLessEqual(webhooks, seen, "webhook routes")
        authorizers = [k for k, r in self.cfn_resources.items()
                       if r.get("Type") == "AWS::ApiGatewayV2::Authorizer"]
        self.assertEqual(authorizers, [], "authorizers in SAM's output")
        body = (self.cfn_resources["HttpApi"].get("Properties") or {}).get("Body") or {}
        for path, item in (body.get("paths") or {}).items():
            for method, op in item.items():
                self.assertFalse((op or {}).get("security"), f"{method} {path}: security")
        self.assertFalse(body.get("security"), "HttpApi body: security")

    def test_integrations_in_the_definition_body(self):
        # An integration written by hand in DefinitionBody wins over SAM's (SAM keeps it): it
        # must be the route's own, naming its function by the function's fixed name.
        api = (self.resources.get("HttpApi") or {}).get("Properties") or {}
        paths = ((api.get("DefinitionBody") or {}).get("paths")) or {}
        by_binary = {binary_of(r): n for n, r in self.functions.items()}
        for path, item in paths.items():
            for method, op in item.items():
                where = f"DefinitionBody {method.upper()} {path}"
                binary = self.code["routes"].get((method.upper(), path))
                self.assertIsNotNone(binary, f"{where}: not a route of the code")
                fn = self.functions[by_binary[binary]].get("Properties") or {}
                fixed = f"${{AWS::StackName}}-{binary}"
                self.assertEqual(fn.get("FunctionName"), {"Fn::Sub": fixed},
                                 f"{where}: {by_binary[binary]} needs FunctionName {fixed}")
                integration = (op or {}).get("x-amazon-apigateway-integration") or {}
                self.assertEqual(integration, {
                    "type": "aws_proxy",
                    "httpMethod": "POST",
                    "uri": {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:"
                                       "path/2015-03-31/functions/arn:${AWS::Partition}:lambda:"
                                       "${AWS::Region}:${AWS::AccountId}:function:"
                                       f"{fixed}/invocations"},
                    "payloadFormatVersion": "2.0",
                }, where)

    def test_no_circular_dependencies(self):
        # cfn-lint 1.58 and `sam validate --lint` pass a template whose function environment
        # names the HttpApi while SAM's integration names the function; CloudFormation refuses
        # it at deployment ("Circular dependency between resources").
        self.assertEqual(cycles(self.cfn_resources), [])

    def test_hms_webhook_url_is_the_apis_own(self):
        hms_route = [p for (m, p), b in self.code["routes"].items()
                     if m == "POST" and p.endswith("/100ms")
                     and self.code["operations"].get(b) == "ProviderEvent"]
        self.assertEqual(len(hms_route), 1, "the 100ms webhook route")
        self.assertEqual(self.conditions.get("HasHmsWebhookSecret"),
                         {"Fn::Not": [{"Fn::Equals": [{"Ref": "HmsWebhookSecret"}, ""]}]})
        creator = [b for b, op in self.code["operations"].items() if op == "CreateCall"]
        for name, res in self.functions.items():
            env = effective_env(self.t, name)
            self.assertEqual(env.get("HMS_WEBHOOK_SECRET"), {"Ref": "HmsWebhookSecret"}, name)
            self.assertEqual(env.get("AGORA_NCS_SECRET"), {"Ref": "AgoraNcsSecret"}, name)
            if binary_of(res) in creator:
                expected = {"Fn::If": ["HasHmsWebhookSecret",
                                       {"Fn::Sub": API_URL + hms_route[0]}, ""]}
            else:
                expected = ""  # it creates no rooms
            self.assertEqual(env.get("HMS_WEBHOOK_URL"), expected, f"{name}: HMS_WEBHOOK_URL")
        outputs = self.t.get("Outputs") or {}
        self.assertEqual((outputs.get("ApiUrl") or {}).get("Value"), {"Fn::Sub": API_URL})

    # IAM

    def test_iam_inline_statements_only(self):
        # On the template: what the functions' Policies say. The managed policies SAM adds to
        # the roles it generates (logs, and X-Ray because Tracing is set) are pinned on SAM's
        # output, in test_generated_roles_have_only_the_expected_managed_policies.
        for name, res in self.functions.items():
            props = res.get("Properties") or {}
            self.assertNotIn("Role", props, f"{name}: an explicit Role bypasses these checks")
            for i, policy in enumerate(as_list(props.get("Policies") or [])):
                where = f"{name}/Policies/{i}"
                self.assertIsInstance(policy, dict, f"{where}: managed policy {policy!r}")
                self.assertEqual(set(policy) - {"Version"}, {"Statement"},
                                 f"{where}: SAM policy template or unknown policy {sorted(policy)}")
        iam = [k for k, r in self.resources.items() if str(r.get("Type", "")).startswith("AWS::IAM::")]
        self.assertEqual(iam, [], "IAM resources outside the functions' inline policies")

    def test_iam_actions_exactly_what_each_function_uses(self):
        table_arn = {"Fn::GetAtt": [TABLE, "Arn"]}
        for name, res in self.functions.items():
            actions = set()
            for policy in as_list((res.get("Properties") or {}).get("Policies") or []):
                if not isinstance(policy, dict):
                    continue
                for st in as_list(policy.get("Statement") or []):
                    where = f"{name}: statement {st!r}"
                    self.assertEqual(st.get("Effect"), "Allow", where)
                    self.assertFalse({"NotAction", "NotResource"} & set(st), where)
                    for a in as_list(st.get("Action")):
                        self.assertIsInstance(a, str, where)
                        self.assertNotIn("*", a, f"{where}: wildcard action")
                        actions.add(a)
                    self.assertEqual(as_list(st.get("Resource")), [table_arn],
                                     f"{where}: resource must be the table ARN only")
            expected = self.code["actions"].get(binary_of(res))
            self.assertEqual({a.lower() for a in actions}, {a.lower() for a in expected or ()},
                             f"{name} ({binary_of(res)})")

    # environment

    def test_every_code_variable_is_set(self):
        stale = LEFT_OUT_IN_CLOUD - self.variables
        self.assertEqual(stale, set(), "LEFT_OUT_IN_CLOUD names variables the code no longer reads")
        wanted = (self.variables | LAMBDA_EXTRA) - LEFT_OUT_IN_CLOUD
        for name in self.functions:
            env = effective_env(self.t, name)
            self.assertEqual(sorted(wanted - set(env)), [], f"{name}: not set")
            self.assertEqual(sorted(LEFT_OUT_IN_CLOUD & set(env)), [],
                             f"{name}: set although LEFT_OUT_IN_CLOUD says it is left out")

    def test_no_unknown_variables(self):
        known = self.variables | LAMBDA_EXTRA
        for name in self.functions:
            unknown = set(effective_env(self.t, name)) - known
            self.assertEqual(sorted(unknown), [], f"{name}: variables the code never reads")

    def test_secrets_come_from_noecho_parameters(self):
        params = self.t.get("Parameters") or {}
        checked = 0
        for name in self.functions:
            for var, value in effective_env(self.t, name).items():
                if not re.search(r"(SECRET|CERTIFICATE)$", var):
                    continue
                ref = value.get("Ref") if isinstance(value, dict) else None
                self.assertIn(ref, params, f"{name}: {var} must Ref a parameter")
                self.assertIs(params[ref].get("NoEcho"), True, f"{name}: {var} ({ref}) NoEcho")
                checked += 1
        self.assertGreater(checked, 0, "no secret variables found")

    def test_max_call_seconds_accepts_what_the_code_accepts(self):
        param = (self.t.get("Parameters") or {}).get("MaxCallSeconds") or {}
        self.assertEqual(param.get("Type"), "String", "MaxCallSeconds (a pattern needs a String)")
        self.assertEqual(param.get("Default"), "0", "MaxCallSeconds: no limit by default")
        pattern = param.get("AllowedPattern")
        self.assertIsInstance(pattern, str, "MaxCallSeconds: AllowedPattern")
        low, high = MAX_CALL_SECONDS
        # CloudFormation matches the whole value (Java regex); fullmatch does the same here.
        wrong = [n for n in range(0, high + 1000)
                 if bool(re.fullmatch(pattern, str(n))) != (n == 0 or low <= n <= high)]
        self.assertEqual(wrong[:10], [], f"MaxCallSeconds: {pattern} is wrong for these")
        for bad in ["", "-1", "060", "1e3", " 60", "60.0", "3600s"]:
            self.assertIsNone(re.fullmatch(pattern, bad), f"MaxCallSeconds accepts {bad!r}")
        env = effective_env(self.t, next(iter(self.functions)))
        self.assertEqual(env.get("CALLBRIDGE_MAX_CALL_SECONDS"), {"Ref": "MaxCallSeconds"})

    def test_function_timeouts_fit_the_http_api(self):
        for name in self.functions:
            timeout = self.effective_properties(name).get("Timeout")
            self.assertIsInstance(timeout, int, f"{name}: Timeout")
            self.assertLess(timeout, HTTP_API_TIMEOUT_SECONDS, name)

    def test_fixed_values_and_table_name(self):
        for name in self.functions:
            env = effective_env(self.t, name)
            for var, value in FIXED_VALUES.items():
                self.assertEqual(env.get(var), value, f"{name}: {var}")
            self.assertEqual(env.get("CALLBRIDGE_TABLE_NAME"), {"Ref": TABLE}, name)

    def test_sam_env_file_has_the_template_variables(self):
        with open(PATHS["sam_env"], encoding="utf-8") as f:
            doc = json.load(f)
        self.assertEqual(sorted(doc), sorted(self.functions), "functions in sam-env.json")
        for name in self.functions:
            self.assertEqual(sorted(doc[name]), sorted(effective_env(self.t, name)), name)
            for var, value in doc[name].items():
                self.assertIsInstance(value, str, f"{name}/{var}")

    # table

    def test_table_settings(self):
        table = self.resources.get(TABLE) or {}
        self.assertEqual(table.get("Type"), "AWS::DynamoDB::Table")
        self.assertEqual(table.get("DeletionPolicy"), "Retain")
        self.assertEqual(table.get("UpdateReplacePolicy"), "Retain")
        p = table.get("Properties") or {}
        self.assertEqual(p.get("BillingMode"), "PAY_PER_REQUEST")
        key, ttl = self.code["key"], self.code["ttl_attribute"]
        self.assertEqual(p.get("KeySchema"), [{"AttributeName": key, "KeyType": "HASH"}])
        self.assertEqual(p.get("AttributeDefinitions"), [{"AttributeName": key, "AttributeType": "S"}])
        self.assertEqual(p.get("TimeToLiveSpecification"), {"AttributeName": ttl, "Enabled": True})
        self.assertEqual(p.get("PointInTimeRecoverySpecification"), {"PointInTimeRecoveryEnabled": True})

    # tracing

    def test_tracing_comes_from_the_parameter(self):
        param = (self.t.get("Parameters") or {}).get("Tracing") or {}
        self.assertEqual(param.get("AllowedValues"), ["Active", "PassThrough"], "Tracing parameter")
        self.assertEqual(param.get("Default"), "Active", "Tracing parameter")
        glob = (self.t.get("Globals") or {}).get("Function") or {}
        self.assertEqual(glob.get("Tracing"), {"Ref": "Tracing"}, "Globals/Function/Tracing")
        for name in self.functions:
            self.assertNotIn("Tracing", self.functions[name].get("Properties") or {},
                             f"{name}: its own Tracing overrides the parameter")
            fn = self.cfn_resources[name].get("Properties") or {}
            self.assertEqual(fn.get("TracingConfig"), {"Mode": {"Ref": "Tracing"}},
                             f"{name}: TracingConfig as SAM generates it")

    def test_generated_roles_have_only_the_expected_managed_policies(self):
        # Tracing is why SAM adds AWSXrayWriteOnlyAccess; the template's own Policies stay
        # inline DynamoDB statements (checked above, on the template).
        roles = {k for k, r in self.cfn_resources.items() if r.get("Type") == "AWS::IAM::Role"}
        expected_roles = set()
        for name in self.functions:
            role = ((self.cfn_resources[name].get("Properties") or {}).get("Role") or {})
            self.assertIsInstance(role, dict, f"{name}: Role")
            role_id = (role.get("Fn::GetAtt") or [None])[0]
            self.assertIn(role_id, roles, f"{name}: its role is generated by SAM")
            expected_roles.add(role_id)
            p = self.cfn_resources[role_id].get("Properties") or {}
            self.assertEqual(p.get("ManagedPolicyArns"), MANAGED_POLICIES, f"{role_id}")
            self.assertFalse({"PermissionsBoundary"} & set(p), role_id)
            inline = [st for pol in p.get("Policies") or []
                      for st in as_list((pol.get("PolicyDocument") or {}).get("Statement") or [])]
            source = [st for pol in as_list((self.functions[name].get("Properties") or {})
                                            .get("Policies") or [])
                      for st in as_list(pol.get("Statement") or [])]
            self.assertEqual(inline, source, f"{role_id}: inline statements are the template's")
        self.assertEqual(roles, expected_roles, "IAM roles besides the functions'")
        iam = sorted(k for k, r in self.cfn_resources.items()
                     if str(r.get("Type", "")).startswith("AWS::IAM::") and k not in roles)
        self.assertEqual(iam, [], "other IAM resources in SAM's output")

    # logs

    def test_log_retention_parameter(self):
        param = (self.t.get("Parameters") or {}).get("LogRetentionDays") or {}
        self.assertEqual(param.get("Type"), "Number")
        self.assertEqual(param.get("Default"), 30)
        self.assertEqual(param.get("AllowedValues"), RETENTION_DAYS)

    def assert_log_group(self, logical_id, where, condition=None):
        group = self.resources.get(logical_id) or {}
        self.assertEqual(group.get("Type"), "AWS::Logs::LogGroup", f"{where}: {logical_id}")
        self.assertEqual(group.get("Condition"), condition, f"{where}: {logical_id} Condition")
        self.assertEqual((group.get("Properties") or {}).get("RetentionInDays"),
                         {"Ref": "LogRetentionDays"}, f"{where}: {logical_id} retention")
        # Chosen deliberately (template.yaml says why), not left to the default.
        self.assertEqual(group.get("DeletionPolicy"), "Delete", f"{where}: {logical_id}")
        self.assertEqual(group.get("UpdateReplacePolicy"), "Retain", f"{where}: {logical_id}")
        return group

    def test_each_function_logs_json_to_its_own_log_group(self):
        seen = {}
        for name in self.functions:
            # As SAM merges Globals' LoggingConfig with the function's own.
            config = (self.cfn_resources[name].get("Properties") or {}).get("LoggingConfig") or {}
            self.assertEqual(config.get("LogFormat"), "JSON", name)
            self.assertEqual(config.get("ApplicationLogLevel"), {"Ref": "LogLevel"}, name)
            ref = config.get("LogGroup")
            self.assertIsInstance(ref, dict, f"{name}: LogGroup must Ref its log group")
            self.assertEqual(set(ref), {"Ref"}, f"{name}: LogGroup must Ref its log group")
            group_id = ref["Ref"]
            self.assertNotIn(group_id, seen, f"{name} shares {group_id} with {seen.get(group_id)}")
            seen[group_id] = name
            group = self.assert_log_group(group_id, name)
            self.assertEqual((group.get("Properties") or {}).get("LogGroupName"),
                             {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{binary_of(self.functions[name])}"},
                             f"{name}: {group_id} name")

    def access_log_settings(self):
        api = self.resources.get("HttpApi") or {}
        settings = (api.get("Properties") or {}).get("AccessLogSettings")
        self.assertIsInstance(settings, dict, "HttpApi: AccessLogSettings")
        branches = settings.get("Fn::If")
        self.assertIsInstance(branches, list, "HttpApi: AccessLogSettings must be an Fn::If")
        self.assertEqual(len(branches), 3)
        self.assertEqual(branches[0], "AccessLogsEnabled", "HttpApi: AccessLogSettings condition")
        self.assertEqual(branches[2], {"Ref": "AWS::NoValue"}, "HttpApi: no access logs when off")
        return branches[1]

    def test_access_logs_go_to_their_log_group(self):
        self.assertEqual(self.conditions.get("AccessLogsEnabled"),
                         {"Fn::Equals": [{"Ref": "ApiAccessLogs"}, "true"]})
        settings = self.access_log_settings()
        self.assertEqual(settings.get("DestinationArn"),
                         {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}, "access log destination")
        group = self.assert_log_group("ApiAccessLogGroup", "access logs", "AccessLogsEnabled")
        name = (group.get("Properties") or {}).get("LogGroupName")
        self.assertTrue(str((name or {}).get("Fn::Sub", "")).startswith("/aws/vendedlogs/"),
                        f"access log group name {name}: keep it under /aws/vendedlogs/")
        for n in self.functions:
            config = (self.cfn_resources[n].get("Properties") or {}).get("LoggingConfig") or {}
            self.assertNotEqual(config.get("LogGroup"), {"Ref": "ApiAccessLogGroup"},
                                f"{n} logs to the access log group")

    def test_access_log_format(self):
        fmt = self.access_log_settings().get("Format")
        self.assertIsInstance(fmt, str, "access log Format")
        self.assertNotIn("\n", fmt, "access log Format must be one line")
        try:
            fields = json.loads(fmt)
        except ValueError as e:
            self.fail(f"access log Format is not a JSON object: {e}")
        self.assertEqual(fields, ACCESS_LOG_FIELDS)
        for leak in ("$context.path", "$context.identity.userAgent", "$context.authorizer"):
            self.assertNotIn(leak, fmt)

    def test_api_throttled_metric_filter(self):
        f = self.resources.get("ApiThrottledMetricFilter") or {}
        self.assertEqual(f.get("Type"), "AWS::Logs::MetricFilter")
        self.assertEqual(f.get("Condition"), "AccessLogsEnabled")
        p = f.get("Properties") or {}
        self.assertEqual(p.get("LogGroupName"), {"Ref": "ApiAccessLogGroup"})
        used = set(re.findall(r"\$\.(\w+)", p.get("FilterPattern", "")))
        self.assertEqual(used, {"status", "integrationStatus"}, p.get("FilterPattern"))
        (t,) = p.get("MetricTransformations") or [None]
        self.assertEqual((t.get("MetricNamespace"), t.get("MetricName")),
                         (APP_NAMESPACE, "ApiThrottled"))
        # The alarm's ApiId dimension is Ref HttpApi: the value must be the API's id field.
        dims = {d["Key"]: d["Value"] for d in t.get("Dimensions") or []}
        self.assertEqual(sorted(dims), FILTER_METRICS["ApiThrottled"])
        self.assertEqual(dims, {"ApiId": "$.apiId"}, "metric filter dimensions")
        self.assertEqual(ACCESS_LOG_FIELDS["apiId"], "$context.apiId")

    # alarms

    def alarms(self):
        return {k: r for k, r in self.resources.items() if r.get("Type") == "AWS::CloudWatch::Alarm"}

    def test_alarm_conditions_and_topic(self):
        c = self.conditions
        self.assertEqual(c.get("HasAlarmEmail"),
                         {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]})
        self.assertEqual(c.get("HasAlarmTopicArn"),
                         {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]})
        self.assertEqual(c.get("AlarmsEnabled"),
                         {"Fn::Or": [{"Condition": "HasAlarmEmail"}, {"Condition": "HasAlarmTopicArn"}]})
        topic = self.resources.get("AlarmTopic") or {}
        self.assertEqual(topic.get("Type"), "AWS::SNS::Topic")
        self.assertEqual(topic.get("Condition"), "HasAlarmEmail")
        self.assertEqual((topic.get("Properties") or {}).get("Subscription"),
                         [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}])
        # The topic exists only for AlarmEmail, so both may not be given (ALARM_TOPIC would pick
        # the ARN and silently drop the address).
        rule = ((self.t.get("Rules") or {}).get("AlarmDestination") or {})
        self.assertEqual([a.get("Assert") for a in rule.get("Assertions") or []],
                         [{"Fn::Or": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]},
                                      {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}])

    def test_every_alarm_notifies_the_topic_only_when_alarms_are_on(self):
        alarms = self.alarms()
        self.assertTrue(alarms, "no alarms")
        for name, alarm in alarms.items():
            cond = alarm.get("Condition")
            ok = cond == "AlarmsEnabled" or {"Condition": "AlarmsEnabled"} in (
                (self.conditions.get(cond) or {}).get("Fn::And") or [])
            self.assertTrue(ok, f"{name}: Condition {cond!r} does not require AlarmsEnabled")
            p = alarm.get("Properties") or {}
            self.assertEqual(p.get("AlarmActions"), [ALARM_TOPIC], f"{name}: AlarmActions")
            self.assertEqual(p.get("OKActions"), [ALARM_TOPIC], f"{name}: OKActions")
            self.assertNotIn("InsufficientDataActions", p, name)
            self.assertEqual(p.get("TreatMissingData"), "notBreaching", name)
            threshold = p.get("Threshold")
            threshold = threshold.get("Ref") if isinstance(threshold, dict) else None
            self.assertTrue(threshold and threshold.startswith("Alarm"),
                            f"{name}: Threshold must Ref an Alarm* parameter, not {p.get('Threshold')!r}")
            self.assertEqual(((self.t.get("Parameters") or {}).get(threshold) or {}).get("Type"),
                             "Number", f"{name}: {threshold}")

    def expected_alarms(self):
        """Alarm logical id -> (the metrics it reads, statistic)."""
        api = {"ApiId": {"Ref": "HttpApi"}}
        fn_ref = {binary_of(r): {"Ref": n} for n, r in self.functions.items()}
        creator = [b for b, op in self.code["operations"].items() if op == "CreateCall"]
        self.assertEqual(len(creator), 1, "one function serves CreateCall")
        expected = {
            "Api5xxRateAlarm": [("AWS/ApiGateway", "5xx", api, "Sum"),
                                ("AWS/ApiGateway", "Count", api, "Sum")],
            "ApiLatencyP99Alarm": [("AWS/ApiGateway", "Latency", api, "p99")],
            "ApiThrottledAlarm": [(APP_NAMESPACE, "ApiThrottled", api, "Sum")],
            "ProviderFailuresAlarm": [(APP_NAMESPACE, "ProviderFailures",
                                       {"FunctionName": fn_ref[creator[0]],
                                        "Provider": {"Ref": "Provider"}}, "Sum")],
            "ThrottledAlarm": [(APP_NAMESPACE, "Throttled",
                                {"FunctionName": fn_ref[b], "Operation": op}, "Sum")
                               for b, op in sorted(self.code["operations"].items())],
        }
        for name, res in self.functions.items():
            prefix = name[:-len("Function")] if name.endswith("Function") else name
            for metric in ("Errors", "Throttles"):
                expected[f"{prefix}{metric}Alarm"] = [
                    ("AWS/Lambda", metric, {"FunctionName": {"Ref": name}}, "Sum")]
        return expected

    def test_alarms_watch_the_right_metrics(self):
        expected = self.expected_alarms()
        alarms = self.alarms()
        self.assertEqual(sorted(alarms), sorted(expected), "alarms")
        for name, metrics in expected.items():
            got, expressions = alarm_metrics(alarms[name])
            key = lambda m: json.dumps(m, sort_keys=True)  # noqa: E731
            self.assertEqual(sorted(got, key=key), sorted(metrics, key=key), name)
            if expressions is not None:
                self.assertEqual(len(expressions), 1, f"{name}: one expression returns data")
                ids = {m["Id"] for m in alarms[name]["Properties"]["Metrics"] if "MetricStat" in m}
                used = set(re.findall(r"[a-z][A-Za-z0-9_]*", expressions[0])) & ids
                self.assertEqual(used, ids, f"{name}: the expression reads every metric")
        for name, metrics in expected.items():
            for ns, metric, dims, _ in metrics:
                if ns == APP_NAMESPACE:
                    declared = {**APP_METRICS, **FILTER_METRICS}.get(metric)
                    self.assertEqual(sorted(dims), declared, f"{name}: dimensions of {metric}")

    def test_the_code_writes_the_alarmed_metrics_as_declared(self):
        metrics = self.code["metrics"]
        self.assertEqual(metrics["namespace"], APP_NAMESPACE)
        for metric, dims in APP_METRICS.items():
            self.assertEqual(sorted(metrics["dimensions"].get(metric) or []), dims,
                             f"the code's dimensions of {metric}")

    def test_readme_names_parameters_and_metrics(self):
        text = README.read_text(encoding="utf-8")
        missing = [p for p in (self.t.get("Parameters") or {}) if f"`{p}`" not in text]
        self.assertEqual(missing, [], "parameters README does not name (Deployment)")
        for metric, dims in {**APP_METRICS, **FILTER_METRICS}.items():
            for word in [metric, *dims]:
                self.assertIn(f"`{word}`", text, f"README: metric {metric}")
        self.assertIn(f"`{APP_NAMESPACE}`", text)

    # helpers

    def effective_properties(self, name):
        props = dict((self.t.get("Globals") or {}).get("Function") or {})
        props.update(self.functions[name].get("Properties") or {})
        return props


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=PATHS["template"])
    parser.add_argument("--sam-env", type=Path, default=PATHS["sam_env"])
    args = parser.parse_args()
    PATHS["template"], PATHS["sam_env"] = args.template, args.sam_env
    try:
        describe()
    except DescribeError as e:
        print(f"check_template.py: {e}")
        print("0 passed, 1 failed", flush=True)
        return 1
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(TemplateChecks)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
