//! The rules a trace must obey to open in Perfetto and chrome://tracing, as Perfetto's
//! JSON importer applies them: the object form with a `traceEvents` array (or a bare
//! array), known phases, numeric timestamps and integer pids and tids, counters whose
//! arguments are all numbers, complete events (`X`) with a numeric, non-negative `dur`,
//! and begin/end events (`B`/`E`) that nest on each track.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// What a trace holds, once it passed the rules: events by phase and by category.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TraceSummary {
    /// Events per phase (`"C"`, `"X"`, `"i"`, `"M"`, ...).
    pub phases: BTreeMap<String, usize>,
    /// Events per category (`"ring"`, `"block"`, `"drop"`, ...).
    pub categories: BTreeMap<String, usize>,
    /// The `clock` of `otherData`, if any.
    pub clock: Option<String>,
}

impl TraceSummary {
    /// Events of category `cat`.
    pub fn count(&self, cat: &str) -> usize {
        self.categories.get(cat).copied().unwrap_or(0)
    }
}

/// Checks `json` against the rules; every broken rule is one message, naming the event.
pub fn check(json: &str) -> Result<TraceSummary, Vec<String>> {
    let value: Value = serde_json::from_str(json).map_err(|e| vec![format!("not JSON: {e}")])?;
    let (events, clock) = match &value {
        Value::Array(events) => (events, None),
        Value::Object(top) => match top.get("traceEvents") {
            Some(Value::Array(events)) => (
                events,
                top.get("otherData")
                    .and_then(|o| o.get("clock"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            ),
            _ => return Err(vec!["the object has no traceEvents array".into()]),
        },
        _ => return Err(vec!["neither an array nor an object".into()]),
    };
    let mut problems = Vec::new();
    let mut summary = TraceSummary {
        clock,
        ..TraceSummary::default()
    };
    // (ts, index, pid, tid, is_begin) of every B and E, to check nesting in time order.
    let mut begin_end = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let mut bad = |what: String| problems.push(format!("event {i}: {what}: {event}"));
        let Some(obj) = event.as_object() else {
            bad("not an object".into());
            continue;
        };
        let ph = obj.get("ph").and_then(Value::as_str).unwrap_or("");
        if !["M", "C", "X", "i", "I", "B", "E"].contains(&ph) {
            bad(format!("unknown phase {ph:?}"));
            continue;
        }
        *summary.phases.entry(ph.to_owned()).or_default() += 1;
        if let Some(cat) = obj.get("cat").and_then(Value::as_str) {
            *summary.categories.entry(cat.to_owned()).or_default() += 1;
        }
        if obj.get("name").and_then(Value::as_str).is_none() {
            bad("no name".into());
        }
        let pid = obj.get("pid").and_then(Value::as_i64);
        if pid.is_none() {
            bad("pid is not an integer".into());
        }
        let tid = match obj.get("tid") {
            None if ph == "M" || ph == "C" => Some(0),
            t => t.and_then(Value::as_i64),
        };
        if tid.is_none() {
            bad("tid is not an integer".into());
        }
        if ph == "M" {
            continue;
        }
        let Some(ts) = obj.get("ts").and_then(Value::as_f64) else {
            bad("ts is not a number".into());
            continue;
        };
        match ph {
            "C" => match obj.get("args").and_then(Value::as_object) {
                Some(args) if !args.is_empty() => {
                    for (key, value) in args {
                        if !value.is_number() {
                            bad(format!("counter argument {key:?} is not a number"));
                        }
                    }
                }
                _ => bad("a counter without arguments".into()),
            },
            "X" => match obj.get("dur").and_then(Value::as_f64) {
                Some(dur) if dur >= 0.0 => {}
                _ => bad("a complete event without a non-negative numeric dur".into()),
            },
            "i" | "I" => {
                if let Some(scope) = obj.get("s") {
                    if !matches!(scope.as_str(), Some("t" | "p" | "g")) {
                        bad("an instant's scope is not t, p or g".into());
                    }
                }
            }
            "B" | "E" => begin_end.push((ts, i, pid, tid, ph == "B")),
            _ => {}
        }
    }
    begin_end.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut open: HashMap<(Option<i64>, Option<i64>), usize> = HashMap::new();
    for (_, i, pid, tid, begin) in begin_end {
        let depth = open.entry((pid, tid)).or_default();
        if begin {
            *depth += 1;
        } else if *depth == 0 {
            problems.push(format!(
                "event {i}: an E without an open B on pid {pid:?} tid {tid:?}"
            ));
        } else {
            *depth -= 1;
        }
    }
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn a_well_formed_trace_passes_and_is_summarised() {
        let trace = r#"{"otherData":{"clock":"simulated"},"traceEvents":[
            {"ph":"M","name":"process_name","pid":1,"args":{"name":"A"}},
            {"ph":"C","cat":"ring","name":"tcp#1 rx","pid":1,"tid":2,"ts":1.5,"args":{"used":3,"capacity":8}},
            {"ph":"X","cat":"block","name":"recv blocked","pid":1,"tid":2,"ts":2,"dur":5},
            {"ph":"B","name":"b","pid":1,"tid":2,"ts":3},
            {"ph":"E","name":"b","pid":1,"tid":2,"ts":4},
            {"ph":"i","s":"t","cat":"drop","name":"drop","pid":1,"tid":0,"ts":5}]}"#;
        let summary = check(trace).unwrap();
        assert_eq!(summary.count("ring"), 1);
        assert_eq!(summary.count("block"), 1);
        assert_eq!(summary.phases["C"], 1);
        assert_eq!(summary.clock.as_deref(), Some("simulated"));
    }

    #[test]
    fn each_rule_of_the_importer_is_enforced() {
        for (broken, why) in [
            (
                r#"[{"ph":"C","name":"c","pid":1,"ts":1,"args":{"used":"3"}}]"#,
                "is not a number",
            ),
            (
                r#"[{"ph":"C","name":"c","pid":1,"ts":1}]"#,
                "without arguments",
            ),
            (r#"[{"ph":"X","name":"x","pid":1,"tid":1,"ts":1}]"#, "dur"),
            (
                r#"[{"ph":"X","name":"x","pid":1,"tid":1,"ts":1,"dur":-2}]"#,
                "dur",
            ),
            (
                r#"[{"ph":"E","name":"e","pid":1,"tid":1,"ts":1}]"#,
                "without an open B",
            ),
            (
                r#"[{"ph":"B","name":"b","pid":1,"tid":1,"ts":5},{"ph":"E","name":"b","pid":1,"tid":1,"ts":4}]"#,
                "without an open B",
            ),
            (r#"[{"ph":"i","name":"i","pid":1,"tid":1,"ts":"1"}]"#, "ts"),
            (r#"[{"ph":"i","name":"i","pid":"1","tid":1,"ts":1}]"#, "pid"),
            (r#"[{"ph":"Q","name":"q","pid":1,"tid":1,"ts":1}]"#, "phase"),
            (r#"{"events":[]}"#, "traceEvents"),
            (r#"{"traceEvents":[{"ph":"i""#, "not JSON"),
        ] {
            let problems = check(broken).expect_err(broken);
            assert!(
                problems.iter().any(|p| p.contains(why)),
                "{broken}: {problems:?}"
            );
        }
    }
}
