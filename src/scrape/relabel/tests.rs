//! Table tests: one case per behaviour, rules written in YAML as a user would.

use super::*;

fn rules(yaml: &str) -> Vec<RelabelConfig> {
    serde_norway::from_str(yaml).unwrap()
}

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

struct Case {
    name: &'static str,
    input: &'static [(&'static str, &'static str)],
    rules: &'static str,
    /// `None`: the set is dropped.
    want: Option<&'static [(&'static str, &'static str)]>,
}

const ABC: &[(&str, &str)] = &[("a", "foo"), ("b", "bar"), ("c", "baz")];

const CASES: &[Case] = &[
    Case {
        name: "replace with capture group",
        input: ABC,
        rules: "- source_labels: [a]\n  regex: 'f(.*)'\n  target_label: d\n  replacement: 'ch${1}-ch${1}'",
        want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
    },
    Case {
        name: "replace joins sources with separator",
        input: ABC,
        rules: "- source_labels: [a, b]\n  separator: '|'\n  regex: '(.*)\\|(.*)'\n  target_label: d\n  replacement: '$2-$1'",
        want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "bar-foo")]),
    },
    Case {
        name: "replace without match leaves labels",
        input: ABC,
        rules: "- source_labels: [a]\n  regex: 'x(.*)'\n  target_label: d",
        want: Some(ABC),
    },
    Case {
        name: "replace with empty result deletes target",
        input: ABC,
        rules: "- source_labels: [a]\n  regex: 'foo'\n  target_label: b\n  replacement: ''",
        want: Some(&[("a", "foo"), ("c", "baz")]),
    },
    Case {
        name: "replace of missing source with default regex sets literal",
        input: ABC,
        rules: "- source_labels: [missing]\n  target_label: d\n  replacement: fixed",
        want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "fixed")]),
    },
    Case {
        name: "replace with templated target",
        input: ABC,
        rules: "- source_labels: [a]\n  regex: '(f)(.*)'\n  target_label: 'label_${1}'\n  replacement: '$2'",
        want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("label_f", "oo")]),
    },
    Case {
        name: "invalid target after expansion is skipped",
        input: &[("a", "some-name-value")],
        rules: "- source_labels: [a]\n  regex: '(.*)'\n  target_label: '${1}'\n  replacement: x",
        want: Some(&[("a", "some-name-value")]),
    },
    Case {
        name: "$1x is a named group and expands to nothing",
        input: &[("a", "foo")],
        rules: "- source_labels: [a]\n  regex: '(f)oo'\n  target_label: d\n  replacement: 'pre-$1x-post'",
        want: Some(&[("a", "foo"), ("d", "pre--post")]),
    },
    Case {
        name: "$$ is a literal dollar and named groups work",
        input: &[("a", "foo")],
        rules: "- source_labels: [a]\n  regex: '(?P<first>f)oo'\n  target_label: d\n  replacement: '$$${first}$'",
        want: Some(&[("a", "foo"), ("d", "$f$")]),
    },
    Case {
        name: "regex is anchored",
        input: &[("a", "foobar")],
        rules: "- source_labels: [a]\n  regex: 'foo'\n  target_label: d\n  replacement: hit",
        want: Some(&[("a", "foobar")]),
    },
    Case { name: "keep on match", input: ABC, rules: "- source_labels: [a]\n  regex: 'f.*'\n  action: keep", want: Some(ABC) },
    Case { name: "keep drops on no match", input: ABC, rules: "- source_labels: [a]\n  regex: 'x.*'\n  action: keep", want: None },
    Case { name: "drop on match", input: ABC, rules: "- source_labels: [a]\n  regex: 'f.*'\n  action: drop", want: None },
    Case { name: "drop keeps on no match", input: ABC, rules: "- source_labels: [a]\n  regex: 'x.*'\n  action: drop", want: Some(ABC) },
    Case {
        name: "keep of a missing label matches the empty string",
        input: ABC,
        rules: "- source_labels: [missing]\n  regex: ''\n  action: keep",
        want: Some(ABC),
    },
    Case {
        name: "keepequal keeps when equal",
        input: &[("a", "x"), ("b", "x")],
        rules: "- source_labels: [a]\n  target_label: b\n  action: keepequal",
        want: Some(&[("a", "x"), ("b", "x")]),
    },
    Case {
        name: "keepequal drops when different",
        input: &[("a", "x"), ("b", "y")],
        rules: "- source_labels: [a]\n  target_label: b\n  action: keepequal",
        want: None,
    },
    Case {
        name: "dropequal drops when equal",
        input: &[("a", "x"), ("b", "x")],
        rules: "- source_labels: [a]\n  target_label: b\n  action: dropequal",
        want: None,
    },
    Case {
        name: "dropequal keeps when different",
        input: &[("a", "x"), ("b", "y")],
        rules: "- source_labels: [a]\n  target_label: b\n  action: dropequal",
        want: Some(&[("a", "x"), ("b", "y")]),
    },
    Case {
        name: "hashmod uses the last 8 md5 bytes",
        input: ABC,
        rules: "- source_labels: [c]\n  target_label: d\n  modulus: 1000\n  action: hashmod",
        want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
    },
    Case {
        name: "hashmod of an address",
        input: &[("__address__", "127.0.0.1:9100")],
        rules: "- source_labels: [__address__]\n  target_label: __tmp_hash\n  modulus: 4\n  action: hashmod",
        want: Some(&[("__address__", "127.0.0.1:9100"), ("__tmp_hash", "2")]),
    },
    Case {
        name: "labelmap copies matching labels",
        input: &[("__meta_rack", "r1"), ("__meta_dc", "eu"), ("job", "n")],
        rules: "- action: labelmap\n  regex: '__meta_(.+)'",
        want: Some(&[("__meta_dc", "eu"), ("__meta_rack", "r1"), ("dc", "eu"), ("job", "n"), ("rack", "r1")]),
    },
    Case {
        name: "labelmap with replacement template",
        input: &[("a", "1"), ("b", "2")],
        rules: "- action: labelmap\n  regex: '(a)'\n  replacement: 'copy_${1}'",
        want: Some(&[("a", "1"), ("b", "2"), ("copy_a", "1")]),
    },
    Case {
        name: "labeldrop",
        input: &[("tmp_a", "1"), ("tmp_b", "2"), ("job", "n")],
        rules: "- action: labeldrop\n  regex: 'tmp_.*'",
        want: Some(&[("job", "n")]),
    },
    Case {
        name: "labelkeep",
        input: &[("tmp_a", "1"), ("tmp_b", "2"), ("job", "n"), ("__name__", "up")],
        rules: "- action: labelkeep\n  regex: 'job|__name__'",
        want: Some(&[("__name__", "up"), ("job", "n")]),
    },
    Case {
        name: "lowercase",
        input: &[("a", "FoO"), ("b", "BaR")],
        rules: "- source_labels: [a, b]\n  target_label: c\n  action: lowercase",
        want: Some(&[("a", "FoO"), ("b", "BaR"), ("c", "foo;bar")]),
    },
    Case {
        name: "uppercase",
        input: &[("a", "FoO"), ("b", "straße")],
        rules: "- source_labels: [a, b]\n  target_label: c\n  action: uppercase",
        want: Some(&[("a", "FoO"), ("b", "straße"), ("c", "FOO;STRAßE")]),
    },
    Case {
        name: "rules apply in sequence",
        input: &[("__address__", "host:9100")],
        rules: "- source_labels: [__address__]\n  regex: '([^:]+):\\d+'\n  target_label: instance\n- source_labels: [instance]\n  regex: host\n  action: keep\n- action: labeldrop\n  regex: __address__",
        want: Some(&[("instance", "host")]),
    },
    Case {
        name: "no rules returns input",
        input: ABC,
        rules: "[]",
        want: Some(ABC),
    },
];

#[test]
fn every_action_table() {
    for case in CASES {
        let got = process(&ls(case.input), &rules(case.rules));
        let want = case.want.map(ls);
        assert_eq!(got, want, "case {:?}", case.name);
    }
}

#[test]
fn hash_matches_md5_tail() {
    // md5("baz") = ...; its last 8 bytes big-endian mod 1000 is 976 (Prometheus's own test).
    assert_eq!(hash_of("baz") % 1000, 976);
    assert_eq!(hash_of("foo") % 1000, 696);
    assert_eq!(hash_of("") % 3, 1);
}

#[test]
fn expand_follows_go_rules() {
    let re = Regex::new("^(?:(a)(b)?(?P<n>c))$").unwrap();
    let caps = re.captures("ac").unwrap();
    for (tpl, want) in [
        ("$1", "a"),
        ("${1}", "a"),
        ("$2", ""),
        ("$n", "c"),
        ("${n}", "c"),
        ("$1x", ""),
        ("${1}x", "ax"),
        ("$$1", "$1"),
        ("$", "$"),
        ("${1", "${1"),
        ("$-", "$-"),
        ("$01", ""),
        ("$0", "ac"),
        ("x$3y", "x"),
        ("x${3}y", "xcy"),
        ("$999999999", ""),
    ] {
        assert_eq!(expand(&re, tpl, &caps), want, "template {tpl:?}");
    }
}

#[test]
fn builder_set_empty_deletes() {
    let mut b = LabelsBuilder::new(&ls(&[("a", "1")]));
    b.set("a", "");
    b.set("b", "2");
    assert_eq!(b.get("a"), "");
    assert_eq!(b.labels(), ls(&[("b", "2")]));
}

#[test]
fn labelmap_keeps_unmatched_labels() {
    let input = ls(&[
        ("__address__", "127.0.0.1:1"),
        ("env", "Prod"),
        ("team", "a"),
        ("unicode", "ÄÖü Straße"),
        ("one", "1"),
    ]);
    let got = process(&input, &rules("[{action: labelmap, regex: 'foo_(.+)'}]")).unwrap();
    assert_eq!(got.len(), 5, "{got:?}");
}
