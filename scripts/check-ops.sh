#!/usr/bin/env bash
# Checks the operations kit in docs/ops/ (alert rules, their unit tests, the example Prometheus
# config, the Grafana dashboard and the Russian runbook):
#   1. promtool check rules  docs/ops/prometheus/kkt-alerts.yml
#   2. promtool test rules   docs/ops/prometheus/kkt-alerts.test.yml
#   3. promtool check config docs/ops/prometheus/prometheus.example.yml (loads the rules too)
#   4. the dashboard is valid JSON (python3 -m json.tool), has exactly 4 panels, each with a
#      non-empty targets[].expr, and the ${DS_PROMETHEUS} input and store/till variables;
#   5. every metric named in the rules, their tests and the dashboard is one of the till
#      contract's names (METRICS below), and every alert has severity, summary, description
#      and a runbook annotation whose anchor exists in docs/ops/runbook-ru.md.
#
# promtool: $PROMTOOL, else the one on PATH, else /usr/bin/promtool. When none is found and the
# script runs as root on a machine with apt-get, it installs the Debian `prometheus` package
# (which ships /usr/bin/promtool) without starting the service; otherwise it fails and says
# what to install.
#
# Usage: ./scripts/check-ops.sh      (from anywhere; paths are taken from the repository root)
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

OPS=docs/ops
RULES=$OPS/prometheus/kkt-alerts.yml
RULE_TESTS=$OPS/prometheus/kkt-alerts.test.yml
PROM_CONFIG=$OPS/prometheus/prometheus.example.yml
DASHBOARD=$OPS/grafana/kkt-dashboard.json
RUNBOOK=$OPS/runbook-ru.md

# The till's metric names (GET /metrics: the seeds' names and the fiscal pipeline's own). `up` is Prometheus' own
# per-target series; the histogram's _bucket/_sum/_count series are accepted for its name.
METRICS=(
    # seeds
    kkt_buffer_size kkt_buffer_percent_full kkt_circuit_breaker_state
    kkt_circuit_breaker_opens_total kkt_sync_duration_seconds kkt_receipts_synced_total
    kkt_dlq_size kkt_hlc_drift_seconds
    # ours
    kkt_buffer_capacity kkt_oldest_unacknowledged_age_seconds kkt_shift_age_seconds
    kkt_register_up kkt_fiscalised_total kkt_ofd_acknowledged_total kkt_ofd_failures_total
    kkt_network_state kkt_sync_failures_total kkt_receipts_accepted_total
    kkt_unsynced_receipts
    # Prometheus
    up
)
HISTOGRAMS=(kkt_sync_duration_seconds)

# install_promtool: apt-get install the Debian package that ships promtool; the service is not
# started (policy-rc.d answers 101 "action forbidden" for the duration of the install).
install_promtool() {
    local policy=/usr/sbin/policy-rc.d made_policy=''
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=$policy
    fi
    local rc=0
    {
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-cache show prometheus >/dev/null 2>&1; then
            apt-get update -q
        fi
        apt-get install -y -q --no-install-recommends prometheus
    } || rc=$?
    if [[ -n $made_policy ]]; then
        rm -f "$made_policy"
    fi
    return "$rc"
}

# find_promtool: set PROMTOOL to a working promtool, installing it when allowed.
find_promtool() {
    if [[ -n ${PROMTOOL:-} ]]; then
        [[ -x $PROMTOOL ]] || die "PROMTOOL=$PROMTOOL is not an executable"
        return
    fi
    PROMTOOL="$(command -v promtool || true)"
    if [[ -z $PROMTOOL && -x /usr/bin/promtool ]]; then
        PROMTOOL=/usr/bin/promtool
    fi
    if [[ -n $PROMTOOL ]]; then
        return
    fi
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        info "promtool not found: installing the Debian package prometheus (service not started)"
        install_promtool || die "apt-get install prometheus failed"
        PROMTOOL=/usr/bin/promtool
        [[ -x $PROMTOOL ]] || die "the prometheus package did not install /usr/bin/promtool"
        return
    fi
    die "promtool not found. Install it: 'sudo apt-get install --no-install-recommends prometheus' \
(Debian/Ubuntu), or unpack promtool from a Prometheus release \
(https://prometheus.io/download/) onto PATH, or set PROMTOOL=/path/to/promtool"
}

# check_files: every file of the kit is there.
check_files() {
    local file
    for file in "$RULES" "$RULE_TESTS" "$PROM_CONFIG" "$DASHBOARD" "$RUNBOOK" "$OPS/README.md"; do
        [[ -f $file ]] || die "missing $file"
    done
}

# check_kit_content: the dashboard's shape, metric names, alert annotations, runbook anchors.
# PyYAML is not assumed: the rule files are read line by line (they keep to plain YAML: one
# key per line, `expr:` either inline or as a `|` block).
check_kit_content() {
    METRICS="${METRICS[*]}" HISTOGRAMS="${HISTOGRAMS[*]}" python3 - "$RULES" "$RULE_TESTS" \
        "$DASHBOARD" "$RUNBOOK" <<'PY'
import json, os, re, sys

rules_path, tests_path, dashboard_path, runbook_path = sys.argv[1:5]
allowed = set(os.environ["METRICS"].split())
for histogram in os.environ["HISTOGRAMS"].split():
    allowed |= {histogram + suffix for suffix in ("_bucket", "_sum", "_count")}
errors = []

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "inf", "nan"}

def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names (inside {...}, by/without/on/ignoring (...)), durations or Grafana variables."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', ' ', expr)
    s = re.sub(r'\$\{[^}]*\}|\$\w+', ' ', s)
    s = re.sub(r'\{[^}]*\}|\[[^\]]*\]', ' ', s)
    s = re.sub(r'\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', ' ', s)
    s = re.sub(r'\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|s|m|h|d|w|y)?\b', ' ', s)
    names = []
    for match in re.finditer(r'[A-Za-z_:][A-Za-z0-9_:]*', s):
        if s[match.end():].lstrip().startswith("("):
            continue  # a function or aggregation
        if match.group(0).lower() in KEYWORDS:
            continue
        names.append(match.group(0))
    return names

def check_names(where, expr):
    for name in metric_names(expr):
        if name not in allowed:
            errors.append(f"{where}: metric {name!r} is not in the till contract ({expr!r})")

def yaml_values(path, key):
    """(line number, value) of every `key:` in a plain YAML file; `|`/`>` blocks joined."""
    lines = open(path, encoding="utf-8").read().splitlines()
    found = []
    pattern = re.compile(r'^(\s*)(?:-\s+)?' + re.escape(key) + r':\s*(.*)$')
    for number, line in enumerate(lines):
        match = pattern.match(line)
        if not match:
            continue
        value = match.group(2).strip()
        if value in ("|", ">", "|-", ">-"):
            indent = len(match.group(1))
            block = []
            for following in lines[number + 1:]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                block.append(following.strip())
            value = " ".join(block)
        elif len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found.append((number + 1, value))
    return found

# --- rules: names, annotations, runbook anchors ---------------------------------------------
runbook = open(runbook_path, encoding="utf-8").read()
anchors = set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', runbook))
exprs = yaml_values(rules_path, "expr")
if not exprs:
    errors.append(f"{rules_path}: no expr found")
for line, expr in exprs:
    check_names(f"{rules_path}:{line}", expr)

text = open(rules_path, encoding="utf-8").read()
blocks = re.split(r'^\s*-\s+alert:', text, flags=re.M)[1:]
if not blocks:
    errors.append(f"{rules_path}: no alert found")
for block in blocks:
    name = block.split("\n", 1)[0].strip()
    for key in ("severity", "summary", "description", "runbook"):
        if not re.search(r'^\s*' + key + r':\s*\S', block, flags=re.M):
            errors.append(f"{rules_path}: alert {name} has no {key}")
    severity = re.search(r'^\s*severity:\s*(\S+)', block, flags=re.M)
    if severity and severity.group(1).strip("'\"") not in ("warning", "critical"):
        errors.append(f"{rules_path}: alert {name}: severity {severity.group(1)}")
    runbook_ref = re.search(r'^\s*runbook:\s*(\S+)', block, flags=re.M)
    if runbook_ref:
        target = runbook_ref.group(1).strip("'\"")
        path, _, anchor = target.partition("#")
        if path != runbook_path:
            errors.append(f"{rules_path}: alert {name}: runbook {target} is not {runbook_path}")
        if anchor not in anchors:
            errors.append(f"{rules_path}: alert {name}: anchor #{anchor} not in {runbook_path}")

# --- rule tests: the input series use contract names too ------------------------------------
for line, series in yaml_values(tests_path, "series"):
    check_names(f"{tests_path}:{line}", series)

# --- dashboard --------------------------------------------------------------------------------
dashboard = json.load(open(dashboard_path, encoding="utf-8"))
if dashboard.get("schemaVersion") != 39:
    errors.append(f"{dashboard_path}: schemaVersion is {dashboard.get('schemaVersion')}, not 39")
if not any(i.get("name") == "DS_PROMETHEUS" for i in dashboard.get("__inputs", [])):
    errors.append(f"{dashboard_path}: no DS_PROMETHEUS in __inputs")
variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
for variable in ("store", "till"):
    if variable not in variables:
        errors.append(f"{dashboard_path}: no template variable {variable}")
        continue
    query = variables[variable].get("query")
    query = query.get("query", "") if isinstance(query, dict) else (query or "")
    label_values = re.match(r'\s*label_values\((.*),\s*\w+\s*\)\s*$', query)
    check_names(f"{dashboard_path}: variable {variable}",
                label_values.group(1) if label_values else query)
panels = dashboard.get("panels", [])
if len(panels) != 4:
    errors.append(f"{dashboard_path}: {len(panels)} panels, expected exactly 4")
for panel in panels:
    title = panel.get("title", "?")
    targets = panel.get("targets") or []
    if not targets:
        errors.append(f"{dashboard_path}: panel {title!r} has no targets")
    for target in targets:
        expr = (target.get("expr") or "").strip()
        if not expr:
            errors.append(f"{dashboard_path}: panel {title!r} has a target without expr")
        check_names(f"{dashboard_path}: panel {title!r}", expr)
    if (panel.get("datasource") or {}).get("uid") != "${DS_PROMETHEUS}":
        errors.append(f"{dashboard_path}: panel {title!r} does not use ${{DS_PROMETHEUS}}")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"    {len(blocks)} alerts with runbook anchors, {len(panels)} panels, "
      f"metric names all in the contract")
PY
}

find_promtool
check_files
info "promtool: $PROMTOOL ($("$PROMTOOL" --version 2>&1 | head -n 1))"

banner "promtool check rules $RULES"
"$PROMTOOL" check rules "$RULES"
banner "promtool test rules $RULE_TESTS"
"$PROMTOOL" test rules "$RULE_TESTS"
banner "promtool check config $PROM_CONFIG"
"$PROMTOOL" check config "$PROM_CONFIG"
banner "dashboard JSON, metric names, runbook anchors"
python3 -m json.tool "$DASHBOARD" >/dev/null || die "$DASHBOARD is not valid JSON"
check_kit_content || die "ops kit content check failed (see above)"

printf '\n%sOK: ops kit checks passed (rules, rule tests, config, dashboard, runbook)%s\n' \
    "$C_GREEN" "$C_RESET"
