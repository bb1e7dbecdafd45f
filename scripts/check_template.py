#!/usr/bin/env python3
"""Checks template.yaml against the code, for what cfn-lint and `sam validate --lint` miss.

Run from the repository root:  python scripts/check_template.py
Needs PyYAML (in the test venv: .tools/venv/bin/python scripts/check_template.py).
Prints one line per check and, last, `N passed, M failed` alone on a line; exits 1 on failure.
`--template PATH` and `--sam-env PATH` check other files (used to show that each check fails).

What it checks:
- every Ref / Fn::GetAtt / Fn::Sub reference (also inside Globals, inline Policies, Rules and
  Outputs) names a parameter or resource of the template (AWS:: pseudo parameters aside);
- each function is built with cargo-lambda from a [[bin]] of a workspace crate under functions/;
- the HttpApi routes are exactly CREATE_CALL_ROUTE and GET_CALL_TOKEN_ROUTE (shared/src/api/route.rs),
  both POST, served by create-call and get-call-token;
- IAM: inline statements only, exactly the DynamoDB actions each function uses, on the table;
- environment: every variable of VARIABLES (shared/src/config.rs) is set for both functions,
  except the deliberate cloud omissions below, and nothing else is set (no typos);
- tests/sam-env.json has, for each function, exactly the template's variables;
- the table: key, billing, TTL, point-in-time recovery, Retain policies.
"""
import argparse
import json
import re
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
    "config_rs": ROOT / "shared" / "src" / "config.rs",
    "api_rs": ROOT / "shared" / "src" / "api" / "route.rs",
    "dynamodb_rs": ROOT / "shared" / "src" / "store" / "dynamodb.rs",
    "functions": ROOT / "functions",
    "workspace": ROOT / "Cargo.toml",
}

# Variables of config.rs VARIABLES that the template deliberately does not set in the cloud.
# HMS_API_BASE_URL only points the tests at a mock 100ms server; unset, the code uses the real
# 100ms API. (CALLBRIDGE_ALLOW_DEV_TOKENS is not here: the template sets it to "false".)
LEFT_OUT_IN_CLOUD = {"HMS_API_BASE_URL"}

# Variables the template must set to exactly this value.
FIXED_VALUES = {"CALLBRIDGE_ALLOW_DEV_TOKENS": "false"}

# The functions also need the table name (lambda/src/lib.rs refuses to start without it).
LAMBDA_EXTRA = {"CALLBRIDGE_TABLE_NAME"}

# Resources SAM generates that the template may name although they are not written in it
# (e.g. "ServerlessHttpApi" for an implicit HTTP API, "<Function>Role"). None are used today;
# add a name here only when the template starts to use it.
SAM_GENERATED = set()

# Attributes Fn::GetAtt may ask of the resource types used here.
KNOWN_ATTRIBUTES = {
    "AWS::DynamoDB::Table": {"Arn", "StreamArn"},
    "AWS::Serverless::Function": {"Arn"},
    "AWS::Serverless::HttpApi": {"ApiEndpoint", "ApiId"},
}

# Binary -> the IAM actions it needs (store/dynamodb.rs: PutItem for create, GetItem to read).
EXPECTED_ACTIONS = {
    "create-call": {"dynamodb:PutItem", "dynamodb:GetItem"},
    "get-call-token": {"dynamodb:GetItem"},
}
TABLE = "CallsTable"


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

def rust_string_list(source, const):
    m = re.search(r"pub const %s\s*:\s*&\[&str\]\s*=\s*&\[(.*?)\];" % const, source, re.S)
    if not m:
        raise AssertionError(f"const {const} not found")
    body = re.sub(r"//[^\n]*", "", m.group(1))
    return re.findall(r'"((?:[^"\\]|\\.)*)"', body)


def rust_str_const(source, const):
    m = re.search(r'pub const %s\s*:\s*&str\s*=\s*"((?:[^"\\]|\\.)*)"\s*;' % const, source)
    if not m:
        raise AssertionError(f"const {const} not found")
    return m.group(1)


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


def code_variables():
    return set(rust_string_list(PATHS["config_rs"].read_text(encoding="utf-8"), "VARIABLES"))


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


def walk_references(node, path, out, local_names=frozenset()):
    """Collects (kind, name, attribute, path) for every reference below node."""
    if isinstance(node, dict):
        if len(node) == 1:
            (key, val), = node.items()
            if key == "Ref" and isinstance(val, str):
                out.append(("Ref", val, None, path))
                return
            if key == "Condition" and isinstance(val, str):
                out.append(("Condition", val, None, path))
                return
            if key == "Fn::GetAtt":
                parts = val.split(".", 1) if isinstance(val, str) else val
                if isinstance(parts, list) and len(parts) == 2 and isinstance(parts[0], str):
                    attr = parts[1] if isinstance(parts[1], str) else None
                    out.append(("GetAtt", parts[0], attr, path))
                    if not isinstance(parts[1], str):
                        walk_references(parts[1], path + "/Fn::GetAtt", out, local_names)
                else:
                    out.append(("GetAtt", repr(val), "?", path))
                return
            if key == "Fn::Sub":
                if isinstance(val, str):
                    text, variables = val, {}
                else:
                    text, variables = val[0], (val[1] if len(val) > 1 else {})
                names = set(local_names) | set(variables)
                for var in re.findall(r"\$\{(?!!)([^}]*)\}", text):
                    name, _, attr = var.strip().partition(".")
                    if name in names:
                        continue
                    out.append(("GetAtt" if attr else "Ref", name, attr or None, path + "/Fn::Sub"))
                for k, v in variables.items():
                    walk_references(v, f"{path}/Fn::Sub/{k}", out, local_names)
                return
            if key == "Fn::If" and isinstance(val, list) and val and isinstance(val[0], str):
                out.append(("Condition", val[0], None, path + "/Fn::If"))
                for i, v in enumerate(val[1:], 1):
                    walk_references(v, f"{path}/Fn::If/{i}", out, local_names)
                return
        for k, v in node.items():
            walk_references(v, f"{path}/{k}", out, local_names)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk_references(v, f"{path}/{i}", out, local_names)


def all_references(t):
    out = []
    for section in ("Globals", "Conditions", "Rules", "Resources", "Outputs"):
        walk_references(t.get(section) or {}, section, out)
    for name, res in (t.get("Resources") or {}).items():
        if isinstance(res.get("Condition"), str):
            out.append(("Condition", res["Condition"], None, f"Resources/{name}/Condition"))
        for dep in as_list(res.get("DependsOn") or []):
            out.append(("DependsOn", dep, None, f"Resources/{name}/DependsOn"))
    return out


# --- The checks --------------------------------------------------------------------------

class TemplateChecks(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.t = load_template(PATHS["template"])
        cls.params = set((cls.t.get("Parameters") or {}).keys())
        cls.resources = cls.t.get("Resources") or {}
        cls.functions = functions(cls.t)
        cls.variables = code_variables()

    # references

    def test_references_name_real_parameters_and_resources(self):
        bad = []
        conditions = set((self.t.get("Conditions") or {}).keys())
        for kind, name, attr, path in all_references(self.t):
            if name.startswith("AWS::"):
                continue
            if kind == "Ref" and name not in self.params | set(self.resources) | SAM_GENERATED:
                bad.append(f"{path}: Ref {name} is no parameter or resource")
            elif kind == "GetAtt":
                if name not in set(self.resources) | SAM_GENERATED:
                    bad.append(f"{path}: GetAtt {name}.{attr} names no resource")
                    continue
                known = KNOWN_ATTRIBUTES.get((self.resources.get(name) or {}).get("Type"))
                if known is not None and attr not in known:
                    bad.append(f"{path}: {name} has no attribute {attr} (known: {sorted(known)})")
            elif kind == "DependsOn" and name not in self.resources:
                bad.append(f"{path}: DependsOn {name} names no resource")
            elif kind == "Condition" and name not in conditions:
                bad.append(f"{path}: condition {name} is not defined")
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
        self.assertEqual(sorted(seen), sorted(EXPECTED_ACTIONS), "one function per binary")

    def test_function_runtime_settings(self):
        for name in self.functions:
            props = self.effective_properties(name)
            self.assertEqual(props.get("Runtime"), "provided.al2023", name)
            self.assertEqual(props.get("Architectures"), ["arm64"], name)
            self.assertEqual(props.get("Handler"), "bootstrap", name)
            self.assertEqual(props.get("CodeUri"), ".", name)

    # routes

    def test_routes_match_the_code(self):
        api = PATHS["api_rs"].read_text(encoding="utf-8")
        expected = {
            ("POST", rust_str_const(api, "CREATE_CALL_ROUTE")): "create-call",
            ("POST", rust_str_const(api, "GET_CALL_TOKEN_ROUTE")): "get-call-token",
        }
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

    # IAM

    def test_iam_inline_statements_only(self):
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
            expected = EXPECTED_ACTIONS.get(binary_of(res))
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
        self.assertEqual(p.get("KeySchema"), [{"AttributeName": "pk", "KeyType": "HASH"}])
        self.assertEqual(p.get("AttributeDefinitions"), [{"AttributeName": "pk", "AttributeType": "S"}])
        self.assertEqual(p.get("TimeToLiveSpecification"), {"AttributeName": "expires_at", "Enabled": True})
        self.assertEqual(p.get("PointInTimeRecoverySpecification"), {"PointInTimeRecoveryEnabled": True})
        # The names the adapter uses (create_table declares the same key and TTL attribute).
        rust = PATHS["dynamodb_rs"].read_text(encoding="utf-8")
        names = set(re.findall(r'\.attribute_name\("([^"]+)"\)', rust))
        self.assertLessEqual({"pk", "expires_at"}, names, "store/dynamodb.rs attribute names")

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
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(TemplateChecks)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
