use serde_json::json;

use super::*;

fn truth() -> serde_json::Value {
    json!({
        "lastDay": "20261202",
        "anomalies": [
            {"kind": "unseen-address", "entity": "i-a", "remoteIp": "198.51.100.7",
             "pairs": {"remotePeer": [["i-a", "198.51.100.7"]], "sourceEndpoint": [["i-a", "10.0.1.5"]]}},
            {"kind": "other-tenant-subnet", "entity": "i-b", "remoteIp": "172.21.1.9",
             "pairs": {"remotePeer": [["i-b", "172.21.1.9"]], "sourceEndpoint": [["i-b", "10.0.1.6"]]}},
        ],
    })
}

fn finding(entity: &str, ip: &str, day: &str) -> Finding {
    Finding {
        entity: entity.into(),
        ip: ip.into(),
        score: 3.0,
        object: format!("s3://lake/aws/VPC_FLOW/2.0/region=us-east-1/accountId=1/eventDay={day}/x.gz.parquet"),
    }
}

#[test]
fn the_ground_truth_gives_the_pairs_of_the_stacks_pairing() {
    let remote = Truth::from_json(&truth(), Peer::Remote).unwrap();
    assert_eq!(remote.last_day, "20261202");
    assert_eq!(remote.anomalies[0].pairs, BTreeSet::from([("i-a".into(), "198.51.100.7".into())]));
    let source = Truth::from_json(&truth(), Peer::Source).unwrap();
    assert_eq!(source.anomalies[1].pairs, BTreeSet::from([("i-b".into(), "10.0.1.6".into())]));
    assert!(Truth::from_json(&json!({"lastDay": "20261202"}), Peer::Remote).is_err());
}

#[test]
fn recall_counts_anomalies_and_normal_pairs_are_the_other_flagged_pairs() {
    let truth = Truth::from_json(&truth(), Peer::Remote).unwrap();
    let findings = [
        finding("i-a", "198.51.100.7", "20261202"),
        finding("i-a", "198.51.100.7", "20261202"),
        finding("i-c", "10.0.2.8", "20261202"),
        finding("i-c", "10.0.2.8", "20261125"),
        finding("i-d", "10.0.2.9", "20261125"),
    ];
    let outcome = Outcome::new(&truth, &findings, Scored::default(), 0.5);
    assert_eq!(outcome.findings, 5);
    assert_eq!(outcome.last_day_findings, 3);
    assert_eq!(outcome.found.iter().map(|a| a.entity.as_str()).collect::<Vec<_>>(), ["i-a"]);
    assert_eq!(outcome.missed.iter().map(|a| a.entity.as_str()).collect::<Vec<_>>(), ["i-b"]);
    assert_eq!(outcome.recall(), 0.5);
    assert_eq!(outcome.normal_flagged.len(), 2, "distinct pairs: {:?}", outcome.normal_flagged);
    assert_eq!(outcome.normal_flagged_last_day, BTreeSet::from([("i-c".into(), "10.0.2.8".into())]));
    let text = outcome.to_string();
    assert!(text.contains("planted anomalies found: 1 of 2 (recall 0.50)"), "{text}");
    assert!(text.contains("missed: i-b reached from 172.21.1.9 [other-tenant-subnet]"), "{text}");
    assert!(text.contains("normal pairs flagged: 2 (1 in the last day's objects)"), "{text}");
}

#[test]
fn the_scorers_counts_are_summed_from_its_invocation_lines_only() {
    let report = |objects: usize, dead: &[&str]| {
        let report = json!({"messages": objects, "skipped": 0, "objects": objects, "rows": 100, "rejected": {},
            "distinctPairs": 7, "requests": 1, "scored": 7, "findingCount": 1, "retried": [], "deadLettered": dead});
        json!({"level": "INFO", "fields": {"message": "invocation", "report": report.to_string()}, "target": "ipcheck"})
            .to_string()
    };
    let log = [
        "START RequestId: 1 Version: $LATEST".to_owned(),
        report(3, &[]),
        r#"{"kind":"finding","entity":"i-a","ip":"198.51.100.7"}"#.to_owned(),
        r#"{"level":"WARN","fields":{"message":"dead-lettered","reason":"gone"},"target":"ipcheck"}"#.to_owned(),
        report(2, &["m-9"]),
        "REPORT RequestId: 1\tDuration: 5.00 ms".to_owned(),
    ];
    let scored = Scored::from_log(log.iter().map(String::as_str));
    assert_eq!((scored.invocations, scored.objects, scored.rows, scored.scored), (2, 5, 200, 14));
    assert_eq!(scored.dead_lettered, ["m-9"]);
}
