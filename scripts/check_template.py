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
- the HttpApi routes are exactly describe's routes (method, path, function);
- IAM: inline statements only, exactly the DynamoDB actions describe lists for each function,
  on the table;
- environment: every variable describe lists is set for both functions, except the deliberate
  cloud omissions below, and nothing else is set (no typos);
- tests/sam-env.json has, for each function, exactly the template's variables;
- the table: key and TTL attribute (describe's), billing, point-in-time recovery, Retain
  policies.
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
# HMS_API_BASE_URL only points the tests at a mock 100ms server; unset, the code uses the real
# 100ms API. (CALLBRIDGE_ALLOW_DEV_TOKENS is not here: the template sets it to "false".)
LEFT_OUT_IN_CLOUD = {"HMS_API_BASE_URL"}

# Variables the template must set to exactly this value.
FIXED_VALUES = {"CALLBRIDGE_ALLOW_DEV_TOKENS": "false"}

# The functions also need the table name (lambda/src/lib.rs refuses to start without it).
LAMBDA_EXTRA = {"CALLBRIDGE_TABLE_NAME"}

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
            "variables": set(doc["variables"]),
            "key": doc["dynamodb"]["key"],
            "ttl_attribute": doc["dynamodb"]["ttl_attribute"],
            # Binary -> the IAM actions it needs on the table.
            "actions": {f: set(a) for f, a in doc["dynamodb"]["actions"].items()},
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
