#!/usr/bin/env python3
"""Ground truth for src/rules/template: runs promtool 2.42 over every case of
src/rules/template/testdata/promtool_cases.json and fills in (`--write`) or checks (default)
the expected text.

* Expansion cases ({"template": t}) become annotations of one alerting rule `T` (expr `vals`)
  in a `promtool test rules` file whose alert_rule_test expects no alerts; promtool then fails
  and prints the alert it got, whose annotations are the expanded texts (Go-quoted), including
  the `<error expanding template: ...>` ones.  In check mode the expected texts are written as
  exp_annotations and promtool must print SUCCESS.
* Parse-error cases ({"template": t, "parse_error": ...}) become one rule each in a file given
  to `promtool check rules`, whose per-rule error lines are the parse errors.

The data the Rust tests use (src/rules/template/tests.rs) must match DATA below.
Usage: scripts/template-oracle.py [--write]
"""
import json, os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = os.path.join(ROOT, "src/rules/template/testdata/promtool_cases.json")
DATA = {
    "external_labels": {"cluster": "c1"},
    "external_url": "http://ext.example.com:9090/prefix",
    "input_series": [
        {"series": 'vals{id="1",instance="host.example.com:9090",job="j"}', "values": "1234.5678"},
        {"series": 'q{a="x",b="2"}', "values": "3"},
        {"series": 'q{a="y",b="1"}', "values": "0.5"},
    ],
}


def go_unquote(s, i):
    """Reads a Go strconv.Quote string starting at s[i] == '"'; returns (text, next index)."""
    assert s[i] == '"'
    i += 1
    out = bytearray()
    simple = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34, "'": 39}
    while s[i] != '"':
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        e = s[i + 1]
        if e in simple:
            out.append(simple[e]); i += 2
        elif e == "x":
            out.append(int(s[i + 2:i + 4], 16)); i += 4
        elif e == "u":
            out += chr(int(s[i + 2:i + 6], 16)).encode(); i += 6
        elif e == "U":
            out += chr(int(s[i + 2:i + 10], 16)).encode(); i += 10
        else:
            raise ValueError("unknown escape " + e)
    return out.decode("utf-8", "surrogateescape"), i + 1


def dump_yaml(obj, path):
    """Writes JSON (a subset of YAML), with astral characters as YAML's \\U escapes: YAML
    refuses JSON's surrogate pairs."""
    text = json.dumps(obj)
    pair = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")
    text = pair.sub(lambda m: "\\U%08x" % (0x10000 + ((int(m.group(1), 16) - 0xD800) << 10)
                                            + (int(m.group(2), 16) - 0xDC00)), text)
    with open(path, "w") as f:
        f.write(text)


def run(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def expansions(cases, check):
    idx = [n for n, c in enumerate(cases) if "parse_error" not in c]
    ann = {"a%03d" % k: cases[n]["template"] for k, n in enumerate(idx)}
    with tempfile.TemporaryDirectory() as d:
        rules = {"groups": [{"name": "g", "rules": [{"alert": "T", "expr": "vals", "annotations": ann}]}]}
        dump_yaml(rules, os.path.join(d, "rules.yml"))
        exp = []
        if check:
            exp = [{"exp_labels": {"id": "1", "instance": "host.example.com:9090", "job": "j"},
                    "exp_annotations": {"a%03d" % k: cases[n]["expected"] for k, n in enumerate(idx)}}]
        test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m",
                "tests": [dict(DATA, interval="1m",
                               alert_rule_test=[{"eval_time": "0m", "alertname": "T", "exp_alerts": exp}])]}
        dump_yaml(test, os.path.join(d, "test.yml"))
        rc, out = run(["promtool", "test", "rules", "test.yml"], d)
    if check:
        if rc != 0:
            sys.exit("promtool disagrees with the table:\n" + out)
        print("expansions: %d cases agree with promtool" % len(idx))
        return
    if "Annotations:{" not in out:
        sys.exit("promtool printed no alert (does an expansion case fail to parse?):\n" + out)
    start = out.index("Annotations:{") + len("Annotations:{")
    got, i = {}, start
    while out[i] != "}":
        m = re.compile(r'(a\d{3})=').match(out, i)
        name = m.group(1)
        got[name], i = go_unquote(out, m.end())
        if out.startswith(", ", i):
            i += 2
    for k, n in enumerate(idx):
        # An annotation that expands to "" is dropped from the alert.
        cases[n]["expected"] = got.get("a%03d" % k, "")


def parse_errors(cases, check):
    idx = [n for n, c in enumerate(cases) if "parse_error" in c]
    with tempfile.TemporaryDirectory() as d:
        rules = {"groups": [{"name": "g", "rules": [
            {"alert": "T", "expr": "vals", "annotations": {"s": cases[n]["template"]}} for n in idx]}]}
        dump_yaml(rules, os.path.join(d, "rules.yml"))
        rc, out = run(["promtool", "check", "rules", "rules.yml"], d)
    errs = {}
    for line in out.splitlines():
        m = re.match(r'rules\.yml: group "g", rule (\d+), "T": annotation "s": (.*)$', line)
        if m:
            errs[int(m.group(1)) - 1] = m.group(2)
    bad = 0
    for k, n in enumerate(idx):
        got = errs.get(k, "")
        if check and got != cases[n]["parse_error"]:
            print("case %r: promtool says %r, table says %r" % (cases[n]["template"], got, cases[n]["parse_error"]))
            bad += 1
        cases[n]["parse_error"] = got
    if check:
        if bad:
            sys.exit(1)
        print("parse errors: %d cases agree with promtool" % len(idx))


def main():
    write = "--write" in sys.argv
    cases = json.load(open(CASES))
    expansions(cases, not write)
    parse_errors(cases, not write)
    if write:
        with open(CASES, "w") as f:
            json.dump(cases, f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
